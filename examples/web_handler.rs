//! A flag check in a web handler: `GET /checkout?user_id=…&country=…` answers with the new or
//! the old checkout, depending on the `new_checkout` flag for that user.
//!
//! One `Client` per process, cloned into the handler (a clone is two `Arc`s); each request
//! evaluates in process, without any network call. See `examples/README.md` for the server
//! set-up; then:
//!
//! ```sh
//! OPTIFORK_URL=http://127.0.0.1:8000 OPTIFORK_SDK_KEY=ofk_... \
//!   cargo run -p optifork-sdk --example web_handler
//! curl 'http://127.0.0.1:3030/checkout?user_id=42&country=US'
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use optifork_sdk::{Client, Context};
use warp::Filter;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder(
        env("OPTIFORK_URL", "http://127.0.0.1:8000"),
        env("OPTIFORK_SDK_KEY", "dev"),
    )
    .build()?;
    // Serve at once; until the server answers, flags evaluate to their defaults.
    match client.wait_until_ready_async(Duration::from_secs(5)).await {
        Ok(status) => println!(
            "ruleset version {:?} from {:?}",
            status.version, status.source
        ),
        Err(e) => eprintln!("not ready yet ({e}); serving defaults meanwhile"),
    }
    client.on_change(|change| println!("flags changed: {:?}", change.flags));

    let with_client = {
        let client = client.clone();
        warp::any().map(move || client.clone())
    };
    let checkout = warp::path("checkout")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(with_client)
        .map(|query: HashMap<String, String>, client: Client| {
            // The request's user as an evaluation context: user_id is the targeting key.
            let mut ctx = match query.get("user_id") {
                Some(id) => Context::new(id.as_str()),
                None => Context::anonymous(),
            };
            for (k, v) in &query {
                if k != "user_id" {
                    ctx.set(k.as_str(), v.as_str());
                }
            }
            if client.is_enabled("new_checkout", &ctx) {
                "new checkout\n"
            } else {
                "classic checkout\n"
            }
        });

    let addr: SocketAddr = env("EXAMPLE_LISTEN", "127.0.0.1:3030").parse()?;
    println!("listening on http://{addr}/checkout (Ctrl-C to stop)");
    warp::serve(checkout)
        .bind(addr)
        .await
        .graceful(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .run()
        .await;
    // Sends what is still queued (tracked flags' exposures) before exiting.
    client.close_async().await?;
    Ok(())
}
