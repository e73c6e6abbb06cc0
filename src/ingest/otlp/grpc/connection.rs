//! Connections: at most `otlp.grpc_max_connections` open at once (more are closed as they
//! arrive), each closed if it sends nothing within the handshake timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The connections `listener` accepts, at most `max` open at once, each closed if it sends
/// nothing within `handshake`.
pub(super) fn incoming(
    listener: TcpListener,
    max: usize,
    handshake: Duration,
) -> impl Stream<Item = io::Result<Limited>> {
    let connections = Arc::new(Semaphore::new(max));
    TcpListenerStream::new(listener).filter_map(move |accepted| {
        let connections = connections.clone();
        async move {
            let stream = match accepted {
                Ok(stream) => stream,
                Err(err) => return Some(Err(err)),
            };
            match connections.try_acquire_owned() {
                Ok(permit) => {
                    let _ = stream.set_nodelay(true);
                    Some(Ok(Limited {
                        stream,
                        _permit: permit,
                        handshake: Some(Box::pin(tokio::time::sleep(handshake))),
                    }))
                }
                // Over the limit: closed at once (dropped), the others keep being served.
                Err(_) => {
                    metrics::counter!("otlp_grpc_connections_closed_total", "reason" => "over_limit")
                        .increment(1);
                    None
                }
            }
        }
    })
}

/// A connection counted against `otlp.grpc_max_connections` while it is open, and closed if it
/// sends nothing within the handshake timeout.
pub(super) struct Limited {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    /// Until the first byte arrives.
    handshake: Option<Pin<Box<Sleep>>>,
}

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.handshake = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.handshake.as_mut().map(|t| t.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {
                    metrics::counter!("otlp_grpc_connections_closed_total", "reason" => "handshake_timeout")
                        .increment(1);
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no bytes within the handshake timeout",
                    )))
                }
                _ => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
