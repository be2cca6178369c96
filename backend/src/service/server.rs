//! The HTTP/1.1 server both services run, with the limits `axum::serve` does not offer:
//!
//! - **Header-read (and idle) timeout** (`HEADER_READ_TIMEOUT_SECONDS`): a client must send a
//!   request's line and headers within this time, counted from when the connection opens or the
//!   previous response ended. So a connection that trickles its headers, or a keep-alive
//!   connection left idle, is closed after it.
//! - **Header size**: request line and headers together at most [`MAX_HEADER_BYTES`]; beyond,
//!   431 (414 for an over-long URI) with the service's own error body, not hyper's empty one.
//! - **Connection limit** (`MAX_CONNECTIONS`): past it the server stops accepting, and new clients
//!   wait in the listen queue until a connection closes.
//! - **Shutdown**: while draining, every answer says `Connection: close`, so keep-alive clients
//!   reconnect elsewhere at a request boundary instead of having a connection reset under them;
//!   when serving stops, connections with no request in flight (idle, or still sending headers)
//!   are closed at once, and only requests already being answered are waited for.
//!
//! Each request carries the peer address as `ConnectInfo<SocketAddr>`.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::ConnectInfo,
    http::{HeaderValue, Request, Response, header},
};
use hyper::{
    body::{Frame, Incoming, SizeHint},
    server::conn::http1,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    task::JoinSet,
};
use tower::ServiceExt;

/// Largest request line plus headers, in bytes. A browser's requests to these services stay
/// under 8 KiB (the session cookie is a few hundred bytes); this leaves ample room.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Connection settings, the same in both binaries (flattened into each one's settings).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Seconds a client has to send a request's line and headers, counted from when the
    /// connection opens or the previous response ends (so also how long an idle keep-alive
    /// connection stays open).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_read_timeout_seconds: u64,

    /// Most client connections open at once; further clients wait in the listen queue.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_connections: u32,
}

/// The body of the 431/414 answer to a request whose head is too large, in the service's own
/// error format (hyper answers those before any router sees the request).
#[derive(Debug, Clone)]
pub struct HeadTooLarge {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its body.
    pub body: String,
}

/// Everything [`serve`] needs besides the listener and the router.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// See [`ConnectionArgs::header_read_timeout_seconds`].
    pub header_read_timeout: Duration,
    /// See [`ConnectionArgs::max_connections`].
    pub max_connections: usize,
    /// The answer to an over-large request head.
    pub head_too_large: HeadTooLarge,
}

impl ServerSettings {
    /// The settings from the command line, with this service's 431 body.
    pub fn new(args: &ConnectionArgs, head_too_large: HeadTooLarge) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(args.header_read_timeout_seconds),
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
            head_too_large,
        }
    }
}

/// Accepts and serves connections until `stop` turns true, then closes the listener, closes
/// connections with nothing in flight and waits for the others. While `draining` is true, every
/// answer carries `Connection: close`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServerSettings,
    draining: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let settings = Arc::new(settings);
    let mut connections = JoinSet::new();
    loop {
        // At the limit this waits, and new clients queue in the kernel's listen backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors or a connection reset before accept: not fatal.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let connection = Connection {
            router: router.clone(),
            remote,
            settings: settings.clone(),
            draining: draining.clone(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        };
        connections.spawn(connection.serve(stream, stop.clone(), permit));
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await (it is not `Send`).
    let _ = stop.wait_for(|stopped| *stopped).await.map(drop);
}

/// One client connection and what its requests share.
#[derive(Clone)]
struct Connection {
    router: Router,
    remote: SocketAddr,
    settings: Arc<ServerSettings>,
    draining: Arc<AtomicBool>,
    /// Requests of this connection being answered (until their body is fully handed to hyper).
    in_flight: Arc<AtomicUsize>,
}

impl Connection {
    async fn serve(self, stream: TcpStream, mut stop: watch::Receiver<bool>, _permit: OwnedSemaphorePermit) {
        let _ = stream.set_nodelay(true);
        let in_flight = self.in_flight.clone();
        let io = TokioIo::new(CannedErrors {
            stream,
            head_too_large: self.settings.head_too_large.clone(),
            in_flight: in_flight.clone(),
            state: Rewrite::Watching,
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.settings.header_read_timeout)
            .max_header_size(MAX_HEADER_BYTES);
        let conn = builder.serve_connection(io, self);
        tokio::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            () = stopped(&mut stop) => {}
        }
        conn.as_mut().graceful_shutdown();
        if in_flight.load(Ordering::SeqCst) == 0 {
            // Idle, or still sending its headers: nothing to finish, so close now rather than
            // let it hold the shutdown for its header timeout.
            return;
        }
        if let Err(err) = conn.await {
            tracing::debug!(error = %err, "connection ended with an error during shutdown");
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for Connection {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard = InFlight::start(self.in_flight.clone());
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.remote));
        let router = self.router.clone();
        let draining = self.draining.clone();
        Box::pin(async move {
            let Ok(response) = router.oneshot(request).await;
            let mut response = response.map(|body| Body::new(TrackedBody { body, _guard: guard }));
            if draining.load(Ordering::SeqCst) {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}

/// Counts a request as in flight until dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(counter: Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as in flight until hyper has taken all of it.
struct TrackedBody {
    body: Body,
    _guard: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        hyper::body::Body::poll_frame(Pin::new(&mut self.body), cx)
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.body)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.body)
    }
}

/// Where [`CannedErrors`] is in rewriting hyper's answer to an over-large head.
enum Rewrite {
    /// Passing writes through, looking for hyper's 431/414.
    Watching,
    /// Writing the replacement; `written` bytes of it are out.
    Replacing { response: Vec<u8>, written: usize },
    /// Replaced; hyper closes the connection next.
    Done,
}

/// The connection's socket, with one change: hyper answers a request whose head is too large
/// with its own 431 (or 414) and an empty body before any router sees it; this replaces that
/// answer with one carrying the service's error body. The services never answer 431 or 414
/// themselves, and hyper's answer comes when no request of the connection is in flight, so a
/// write starting with that status line at such a moment is hyper's.
struct CannedErrors {
    stream: TcpStream,
    head_too_large: HeadTooLarge,
    in_flight: Arc<AtomicUsize>,
    state: Rewrite,
}

impl CannedErrors {
    fn replacement(&self, buf: &[u8]) -> Option<Vec<u8>> {
        if self.in_flight.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let status = ["431 Request Header Fields Too Large", "414 URI Too Long"]
            .into_iter()
            .find(|status| {
                [b"HTTP/1.1 ".as_slice(), b"HTTP/1.0 "].iter().any(|version| {
                    buf.starts_with(version) && buf[version.len()..].starts_with(&status.as_bytes()[..4])
                })
            })?;
        let HeadTooLarge { content_type, body } = &self.head_too_large;
        Some(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }
}

impl AsyncRead for CannedErrors {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CannedErrors {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if matches!(this.state, Rewrite::Watching) {
            match this.replacement(buf) {
                Some(response) => this.state = Rewrite::Replacing { response, written: 0 },
                None => return Pin::new(&mut this.stream).poll_write(cx, buf),
            }
        }
        while let Rewrite::Replacing { response, written } = &mut this.state {
            if *written == response.len() {
                this.state = Rewrite::Done;
                break;
            }
            match Pin::new(&mut this.stream).poll_write(cx, &response[*written..]) {
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
        // hyper's own bytes are swallowed: it believes it wrote them all.
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        // One buffer per write, so hyper's status line is always at the start of one.
        false
    }
}
