//! How the server meets connections (issue 16): one accept loop for plain HTTP and TLS that
//! keeps the server answering when sockets are opened and left idle or half-sent.
//!
//! - a request's headers must arrive within `header_read_timeout_secs` of the connection's being
//!   ready for one (a fresh connection, or after the previous answer on a kept-alive one);
//! - a connection with no request in flight and no byte either way for `idle_timeout_secs` is
//!   closed (HTTP/2 included);
//! - at most `max_connections` are open: at the limit, the connection that has been waiting
//!   longest without a request in flight is closed to make room, and when every connection has a
//!   request in flight the new one is closed at once; one warning is logged when the limit is
//!   reached (again only after the count fell below nine tenths of it);
//! - on shutdown the listener closes, open connections finish their requests and close, and
//!   whatever is still open `shutdown_timeout_secs` later is dropped.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// `[server]`: how connections are bounded in time and number.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Seconds a client has to send a request's headers once the connection is ready for one.
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may stay open with no request in flight and no byte either way.
    pub idle_timeout_secs: u64,
    /// Connections open at once, at most.
    pub max_connections: usize,
    /// Seconds that requests in flight get to finish once the server is asked to stop.
    pub shutdown_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 4096,
            shutdown_timeout_secs: 10,
        }
    }
}

impl ServerConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("max_connections", self.max_connections as u64),
        ] {
            if v == 0 {
                return Err(format!("server.{key} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// The connections the process can hold: the configured bound, lowered to what its open-files
/// limit leaves after a reserve for the database, logs and files (a limit the process cannot
/// meet would let idle sockets exhaust the descriptors before the bound is reached).
fn effective_max(configured: usize) -> usize {
    const RESERVE: u64 = 64;
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<u64>().ok())
        });
    let max = match soft {
        Some(n) => {
            configured.min(usize::try_from(n.saturating_sub(RESERVE).max(16)).unwrap_or(usize::MAX))
        }
        None => configured,
    };
    if max < configured {
        tracing::warn!(
            configured,
            used = max,
            "server.max_connections is above what the open-files limit (ulimit -n) allows; using the lower bound"
        );
    }
    max.max(1)
}

/// How long the TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Milliseconds since [`Pool::base`] of the last byte read or written.
    last: AtomicU64,
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// Told to close (to make room).
    close: Notify,
}

impl Conn {
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }
}

/// The open connections.
struct Pool {
    base: Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
    max: usize,
    at_limit: AtomicBool,
}

impl Pool {
    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Registers a new connection, making room if needed; None when there is no room.
    fn admit(&self) -> Option<(u64, Arc<Conn>)> {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if conns.len() >= self.max {
            if !self.at_limit.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max_connections = self.max,
                    "connection limit reached: closing connections that wait without a request, refusing new ones while every connection has a request in flight"
                );
            }
            let oldest = conns
                .iter()
                .filter(|(_, c)| c.idle())
                .min_by_key(|(_, c)| c.last.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some(c) = conns.remove(&oldest) {
                c.close.notify_one();
            }
        } else if conns.len() < self.max * 9 / 10 {
            self.at_limit.store(false, Ordering::Relaxed);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let c = Arc::new(Conn {
            last: AtomicU64::new(self.now_ms()),
            in_flight: AtomicUsize::new(0),
            close: Notify::new(),
        });
        conns.insert(id, c.clone());
        Some((id, c))
    }

    fn remove(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

/// A socket that notes when bytes last went through it.
struct Activity<T> {
    inner: T,
    conn: Arc<Conn>,
    pool: Arc<Pool>,
}

impl<T> Activity<T> {
    fn touch(&self) {
        self.conn.last.store(self.pool.now_ms(), Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Activity<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Activity<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<Conn>);

impl InFlight {
    fn new(c: &Arc<Conn>) -> Self {
        c.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(c.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown` completes,
/// within the bounds of `cfg`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    cfg: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let pool = Arc::new(Pool {
        base: Instant::now(),
        conns: Mutex::new(HashMap::new()),
        next: AtomicU64::new(0),
        max: effective_max(cfg.max_connections),
        at_limit: AtomicBool::new(false),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while tasks.try_join_next().is_some() {}
        let Some((id, conn)) = pool.admit() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = Activity {
            inner: stream,
            conn: conn.clone(),
            pool: pool.clone(),
        };
        let watcher = graceful.watcher();
        let (router, tls, cfg, pool) = (router.clone(), tls.clone(), cfg.clone(), pool.clone());
        tasks.spawn(async move {
            let closed = conn.clone();
            tokio::select! {
                () = connection(io, peer, router, tls, &cfg, watcher, &pool) => {}
                () = closed.close.notified() => {
                    tracing::debug!(%peer, "idle connection closed to make room");
                }
            }
            pool.remove(id);
        });
    }
    drop(listener);
    let grace = Duration::from_secs(cfg.shutdown_timeout_secs);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tasks.len(),
            shutdown_timeout_secs = cfg.shutdown_timeout_secs,
            "connections still open at the shutdown deadline are dropped"
        );
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn connection(
    io: Activity<TcpStream>,
    peer: SocketAddr,
    router: Router,
    tls: Option<TlsAcceptor>,
    cfg: &ServerConfig,
    watcher: hyper_util::server::graceful::Watcher,
    pool: &Arc<Pool>,
) {
    let conn = io.conn.clone();
    match tls {
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                Ok(Ok(stream)) => {
                    // A verified client certificate names the connection's every request.
                    let client = crate::tls::ClientCertificate::of(stream.get_ref().1);
                    http(stream, peer, client, router, cfg, watcher, conn, pool).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
        None => http(io, peer, None, router, cfg, watcher, conn, pool).await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn http<T>(
    io: T,
    peer: SocketAddr,
    client: Option<crate::tls::ClientCertificate>,
    router: Router,
    cfg: &ServerConfig,
    watcher: hyper_util::server::graceful::Watcher,
    conn: Arc<Conn>,
    pool: &Arc<Pool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The peer goes into each request's extensions (what `into_make_service_with_connect_info`
    // does): layering the router per connection would copy every route for every connection.
    let counted = conn.clone();
    let service = tower::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        if let Some(c) = &client {
            req.extensions_mut().insert(c.clone());
        }
        let guard = InFlight::new(&counted);
        let router = router.clone();
        async move {
            let r = tower::ServiceExt::oneshot(router, req).await;
            drop(guard);
            r
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(cfg.header_read_timeout_secs));
    builder.http2().timer(TokioTimer::new());
    let served = builder.serve_connection_with_upgrades(
        TokioIo::new(io),
        hyper_util::service::TowerToHyperService::new(service),
    );
    let served = watcher.watch(served.into_owned());
    tokio::pin!(served);
    let idle = Duration::from_secs(cfg.idle_timeout_secs);
    loop {
        let since = Duration::from_millis(
            pool.now_ms()
                .saturating_sub(conn.last.load(Ordering::Relaxed)),
        );
        let wait = idle.saturating_sub(since).max(Duration::from_secs(1));
        tokio::select! {
            r = &mut served => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep(wait) => {
                let since = pool.now_ms().saturating_sub(conn.last.load(Ordering::Relaxed));
                if conn.idle() && Duration::from_millis(since) >= idle {
                    tracing::debug!(%peer, "idle connection closed");
                    return;
                }
            }
        }
    }
}
