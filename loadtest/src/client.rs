//! A lean HTTP/1.1 client: hyper's connection API over a tokio `TcpStream`, one request at
//! a time per keep-alive connection, no pool, no redirects, no TLS.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One keep-alive connection that sends requests with a full body.
pub type Connection = SendRequest<Full<Bytes>>;

/// Opens a connection to `addr` and drives it in a background task.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Connection> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("failed to connect to {addr}"))?;
    // Requests are small and written at once; Nagle would only add delay.
    stream
        .set_nodelay(true)
        .context("failed to set TCP_NODELAY")?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("HTTP/1.1 handshake with {addr} failed"))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes; errors surface on the sender.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Where a URL base such as `http://127.0.0.1:8080/prefix` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub addr: SocketAddr,
    /// The `Host` header: the URL's authority.
    pub host: String,
    /// The URL's path without its trailing `/` (usually empty).
    pub path_prefix: String,
}

impl Base {
    /// Parses and resolves `url`; only `http` is supported.
    pub fn parse(url: &str) -> anyhow::Result<Base> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("`{url}` is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!("`{url}`: only http:// is supported, not {other}://"),
            None => bail!("`{url}` has no scheme; use http://HOST:PORT"),
        }
        let authority = uri
            .authority()
            .with_context(|| format!("`{url}` has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(authority.host(), port))
            .with_context(|| format!("failed to resolve {}", authority.host()))?
            .next()
            .with_context(|| format!("{} resolves to no address", authority.host()))?;
        Ok(Base {
            addr,
            host: authority.as_str().to_owned(),
            path_prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

/// `GET path` on a fresh connection to `addr`; the status code, or why there was none.
pub async fn get_status(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<u16> {
    let attempt = async {
        let stream = TcpStream::connect(addr).await?;
        let (mut sender, connection) =
            http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = http::Request::get(path)
            .header(http::header::HOST, addr.to_string())
            .body(Empty::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        anyhow::Ok(status)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .with_context(|| format!("GET {path} on {addr} timed out"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_bases_resolve_with_their_prefix() {
        let base = Base::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(base.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(base.host, "127.0.0.1:8080");
        assert_eq!(base.path_prefix, "");
        let prefixed = Base::parse("http://127.0.0.1:9/sluice/").unwrap();
        assert_eq!(prefixed.path_prefix, "/sluice");
        assert!(Base::parse("https://127.0.0.1:8443").is_err());
        assert!(Base::parse("127.0.0.1:8080").is_err());
        assert!(Base::parse("http://").is_err());
    }
}
