//! A Lambda Runtime API emulator for one function process: it hands out the events queued
//! with [`RuntimeApi::invoke`] on `GET /2018-06-01/runtime/invocation/next` (holding the
//! request open while there is none, as Lambda does) and records when the process first
//! asked for an event (init done) and when each response or error came back
//! (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::http::{self, Request, Response};

const PREFIX: &str = "/2018-06-01/runtime";

/// How an invocation ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub at: Instant,
    /// `Ok(response body)` or `Err(error body)`.
    pub result: Result<String, String>,
}

#[derive(Default)]
struct State {
    pending: VecDeque<(String, String)>,
    first_next: Option<Instant>,
    outcomes: Vec<(String, Outcome)>,
    init_error: Option<String>,
    next_id: u64,
}

/// One emulator (one per function process, so timings never mix).
#[derive(Clone)]
pub struct RuntimeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let changed = Arc::new(Notify::new());
        let (s, c) = (state.clone(), changed.clone());
        let addr = http::serve(Arc::new(move |req| {
            let (s, c) = (s.clone(), c.clone());
            http::boxed(async move { handle(&s, &c, req).await })
        }))
        .await?;
        Ok(RuntimeApi {
            addr,
            state,
            changed,
        })
    }

    /// Queues an event; returns its request id.
    pub fn invoke(&self, event: String) -> String {
        let mut state = self.lock();
        state.next_id += 1;
        let id = format!("bench-{:06}", state.next_id);
        state.pending.push_back((id.clone(), event));
        drop(state);
        self.changed.notify_waiters();
        id
    }

    /// When the process first asked for an event: the end of its init.
    pub fn first_next(&self) -> Option<Instant> {
        self.lock().first_next
    }

    /// Waits until the invocation `id` ended, the process reported an init error, or
    /// `timeout` passed.
    pub async fn wait_for(&self, id: &str, timeout: Duration) -> Result<Outcome, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            {
                let state = self.lock();
                if let Some((_, outcome)) = state.outcomes.iter().find(|(i, _)| i == id) {
                    return Ok(outcome.clone());
                }
                if let Some(error) = &state.init_error {
                    return Err(format!("init error: {error}"));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(format!("no response to {id} within {timeout:?}"));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn handle(state: &Mutex<State>, changed: &Notify, req: Request) -> Response {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let path = req.path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Response::json(404, r#"{"errorType":"NotFound"}"#);
    };
    match (req.method.as_str(), rest) {
        ("GET", "/invocation/next") => loop {
            let notified = changed.notified();
            {
                let mut s = lock();
                s.first_next.get_or_insert_with(Instant::now);
                if let Some((id, event)) = s.pending.pop_front() {
                    let deadline = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() + 900_000)
                        .unwrap_or(0);
                    return Response::json(200, event)
                        .header("lambda-runtime-aws-request-id", id)
                        .header("lambda-runtime-deadline-ms", deadline.to_string())
                        .header(
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:us-east-1:123456789012:function:bench",
                        )
                        .header(
                            "lambda-runtime-trace-id",
                            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
                        );
                }
            }
            notified.await;
        },
        ("POST", "/init/error") => {
            lock().init_error = Some(String::from_utf8_lossy(&req.body).into_owned());
            changed.notify_waiters();
            Response::json(202, r#"{"status":"OK"}"#)
        }
        ("POST", rest) => {
            let body = String::from_utf8_lossy(&req.body).into_owned();
            let parsed = rest
                .strip_prefix("/invocation/")
                .and_then(|r| r.split_once('/'))
                .and_then(|(id, kind)| match kind {
                    "response" => Some((id.to_owned(), Ok(body.clone()))),
                    "error" => Some((id.to_owned(), Err(body.clone()))),
                    _ => None,
                });
            let Some((id, result)) = parsed else {
                return Response::json(404, r#"{"errorType":"NotFound"}"#);
            };
            lock().outcomes.push((
                id,
                Outcome {
                    at: Instant::now(),
                    result,
                },
            ));
            changed.notify_waiters();
            Response::json(202, r#"{"status":"OK"}"#)
        }
        _ => Response::json(404, r#"{"errorType":"NotFound"}"#),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// Sends one raw HTTP/1.1 request and returns the whole response (the connection is
    /// closed after it).
    async fn send(addr: SocketAddr, request: String) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8(response).unwrap()
    }

    #[tokio::test]
    async fn given_a_queued_event_when_the_runtime_asks_and_answers_then_the_outcome_is_recorded() {
        let api = RuntimeApi::start().await.unwrap();
        let id = api.invoke(r#"{"hello":"world"}"#.into());
        let next = send(
            api.addr,
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nconnection: close\r\n\r\n".into(),
        )
        .await;
        assert!(next.starts_with("HTTP/1.1 200"), "{next}");
        assert!(next.contains(&format!("lambda-runtime-aws-request-id: {id}")));
        assert!(next.ends_with(r#"{"hello":"world"}"#));
        assert!(api.first_next().is_some());
        // A chunked body, as a streaming client may send it.
        let answer = send(
            api.addr,
            format!(
                "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\n\
                 transfer-encoding: chunked\r\nconnection: close\r\n\r\n\
                 3\r\n{{\"o\r\n5\r\nk\":1}}\r\n0\r\n\r\n"
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
        let outcome = api.wait_for(&id, Duration::from_secs(5)).await.unwrap();
        assert_eq!(outcome.result, Ok(r#"{"ok":1}"#.to_owned()));
    }

    #[tokio::test]
    async fn given_an_init_error_when_waiting_then_the_error_is_reported_not_a_timeout() {
        let api = RuntimeApi::start().await.unwrap();
        let id = api.invoke("{}".into());
        let body = r#"{"errorType":"Config","errorMessage":"HARK_TABLE is not set"}"#;
        send(
            api.addr,
            format!(
                "POST /2018-06-01/runtime/init/error HTTP/1.1\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .await;
        let e = api.wait_for(&id, Duration::from_secs(5)).await.unwrap_err();
        assert!(
            e.contains("init error") && e.contains("HARK_TABLE is not set"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn given_no_answer_when_waiting_then_it_times_out_naming_the_request() {
        let api = RuntimeApi::start().await.unwrap();
        let id = api.invoke("{}".into());
        let e = api
            .wait_for(&id, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(e.contains(&id), "{e}");
        let unknown = send(
            api.addr,
            "POST /2018-06-01/runtime/bogus HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
        )
        .await;
        assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    }
}
