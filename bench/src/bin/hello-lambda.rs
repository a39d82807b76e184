//! The cold-start baseline: the smallest `lambda_runtime` function (echoes its event), built
//! with the workspace's release profile so `hark-bench init` compares like with like.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(echo)).await
}
