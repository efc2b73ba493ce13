//! A small HTTP/1.1 client on hyper (which axum already brings in): enough to call a third-party
//! endpoint, and for the end-to-end tests to drive the service.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A response: its status and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The body, as sent.
    pub body: Bytes,
}

impl Response {
    /// The body as JSON (`null` when it is empty or not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Send one request to `url` (`http://host:port/path`) with `headers` and `body`, and read the
/// whole response; fails after `timeout`.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
    timeout: Duration,
) -> Result<Response, String> {
    tokio::time::timeout(timeout, send_now(method, url, headers, body.into()))
        .await
        .map_err(|_| format!("{url}: no answer within {timeout:?}"))?
}

async fn send_now(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Response, String> {
    let uri: Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("{url}: only http:// URLs are supported"));
    }
    let host = uri.host().ok_or_else(|| format!("{url}: no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri
        .authority()
        .map_or_else(|| host.to_owned(), |a| a.as_str().to_owned());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "client connection closed");
        }
    });
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, authority)
        .header(CONTENT_LENGTH, body.len());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| format!("{url}: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .to_bytes();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// POST `value` as JSON to `url`.
pub async fn post_json(url: &str, value: &serde_json::Value) -> Result<Response, String> {
    let body = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    send(
        Method::POST,
        url,
        &[(CONTENT_TYPE.as_str(), "application/json")],
        body,
        Duration::from_secs(10),
    )
    .await
}
