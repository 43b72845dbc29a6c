//! Remote config: resolve the `checkout_settings` config for a few users (overrides for a
//! segment deep-merged over the general value), then watch for changes and print the new
//! values as they arrive (Ctrl-C to stop, or set EXAMPLE_WATCH_SECS).
//!
//! See `examples/README.md` for the server set-up; then:
//!
//! ```sh
//! OPTIFORK_URL=http://127.0.0.1:8000 OPTIFORK_SDK_KEY=ofk_... \
//!   cargo run -p optifork-sdk --example remote_config
//! ```

use std::time::Duration;

use optifork_sdk::{Client, Context};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder(
        env("OPTIFORK_URL", "http://127.0.0.1:8000"),
        env("OPTIFORK_SDK_KEY", "dev"),
    )
    // Start from the last good ruleset even if the server is down.
    .snapshot_path(std::env::temp_dir().join("optifork-example-snapshot.json"))
    .build()?;
    if let Err(e) = client.wait_until_ready_async(Duration::from_secs(5)).await {
        eprintln!("server not reached ({e}); status: {:?}", client.status());
    }

    let users = [
        Context::new("alice").with("tier", "premium"),
        Context::new("bob").with("tier", "free"),
    ];
    let show = |client: &Client| {
        for user in &users {
            let settings = client.config("checkout_settings", user);
            println!(
                "{}: {}",
                user.key().unwrap_or("?"),
                settings.unwrap_or_default()
            );
        }
    };
    show(&client);

    let mut changes = client.subscribe();
    let watch = Duration::from_secs(env("EXAMPLE_WATCH_SECS", "3600").parse()?);
    println!("watching for changes for {watch:?} (edit the config to see them)");
    let deadline = tokio::time::sleep(watch);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) if change.config_changed("checkout_settings") => {
                    println!("version {}:", change.version);
                    show(&client);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = &mut deadline => break,
        }
    }
    client.close_async().await?;
    Ok(())
}
