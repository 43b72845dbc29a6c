//! Build script: napi-build sets the linker up for a Node-API addon.

fn main() {
    napi_build::setup();
}
