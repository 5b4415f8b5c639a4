//! A process function's network: a namespace of its own that holds only loopback, where the
//! node listens as the function's HTTP proxy and platform API.
//!
//! Nothing else is reachable from inside: no other interface, no route, no DNS server. The
//! function's outgoing requests go through the proxy (`HTTP_PROXY`, `HTTPS_PROXY`), which
//! applies the same policy as a wasm guest's (`crate::outbound`), and `BATON_API` names the
//! same listener, which answers the platform API's paths in-process.
//!
//! A socket belongs to the network namespace of the thread that created it, for life. So
//! the node makes sockets inside the function's namespace from a short-lived thread that
//! enters it ([`Network::socket`]) and uses them from its runtime as any other: the proxy's
//! listener, and the connections to an http-mode function's port. The namespace lives as
//! long as the node holds its descriptor; launchers enter it through `/proc/<node>/fd/<n>`.

use crate::outbound::proxy::{self, ProxyContext};
use std::ffi::CString;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A network namespace of the node's making, with loopback up.
#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    fd: Arc<OwnedFd>,
}

impl Namespace {
    /// Makes a namespace (needs `CAP_SYS_ADMIN` and `CAP_NET_ADMIN`, as root has).
    pub(crate) fn create() -> io::Result<Namespace> {
        in_new_thread(|| {
            // SAFETY: unshare takes flags only; it moves this thread alone (a network
            // namespace, unlike a mount namespace, may differ between threads).
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            loopback_up()?;
            let fd = std::fs::File::open("/proc/thread-self/ns/net")?;
            Ok(Namespace {
                fd: Arc::new(fd.into()),
            })
        })
    }

    /// How a launcher (a child of this process) opens the namespace to enter it.
    pub(crate) fn path(&self) -> CString {
        CString::new(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
        .expect("no NUL in a number")
    }

    /// A TCP socket (IPv4, non-blocking, close-on-exec) that belongs to this namespace.
    async fn socket(&self) -> io::Result<TcpSocket> {
        let fd = self.fd.clone();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("baton-netns".into())
            .spawn(move || {
                let made = in_namespace(&fd);
                let _ = sender.send(made);
            })?;
        let socket = receiver
            .await
            .map_err(|_| io::Error::other("the socket thread died"))??;
        Ok(TcpSocket::from_std_stream(std::net::TcpStream::from(
            socket,
        )))
    }

    /// Connects to `port` on the namespace's loopback.
    pub(crate) async fn connect(&self, port: u16) -> io::Result<TcpStream> {
        let stream = self
            .socket()
            .await?
            .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Listens on a free port of the namespace's loopback.
    pub(crate) async fn listen(&self) -> io::Result<TcpListener> {
        let socket = self.socket().await?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        socket.listen(1024)
    }

    /// A port free on the namespace's loopback now (for an http-mode function's `PORT`).
    pub(crate) async fn free_port(&self) -> io::Result<u16> {
        let socket = self.socket().await?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        Ok(socket.local_addr()?.port())
    }
}

/// What every sandbox of one function gets in its network.
pub(crate) struct NetworkPlan {
    /// What its proxy serves.
    pub(crate) context: Arc<ProxyContext>,
    /// Whether the proxy stands for the platform API too (`BATON_API`).
    pub(crate) platform_api: bool,
    /// Whether the platform API serves S3 (`AWS_ENDPOINT_URL`).
    pub(crate) s3: bool,
}

impl std::fmt::Debug for NetworkPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkPlan")
            .field("platform_api", &self.platform_api)
            .field("s3", &self.s3)
            .finish_non_exhaustive()
    }
}

impl NetworkPlan {
    /// Makes a sandbox's namespace and starts serving its proxy in it.
    pub(crate) async fn start(&self) -> io::Result<Network> {
        let namespace = Namespace::create()?;
        let listener = namespace.listen().await?;
        let proxy = listener.local_addr()?;
        let server = tokio::spawn(proxy::serve(listener, self.context.clone(), proxy));
        Ok(Network {
            namespace,
            proxy,
            platform_api: self.platform_api,
            s3: self.s3,
            server,
        })
    }
}

/// One sandbox's namespace with the node's proxy and platform API listening inside; the
/// namespace and the proxy go when this is dropped.
#[derive(Debug)]
pub(crate) struct Network {
    namespace: Namespace,
    proxy: SocketAddr,
    platform_api: bool,
    s3: bool,
    server: tokio::task::JoinHandle<()>,
}

impl Network {
    pub(crate) fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The variables that point the function's HTTP clients at the proxy and the platform
    /// API, in both spellings clients read. Loopback stays direct: it is the function's own.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let url = format!("http://{}", self.proxy);
        let mut env: Vec<(String, String)> =
            ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"]
                .iter()
                .map(|k| (k.to_string(), url.clone()))
                .collect();
        for key in ["NO_PROXY", "no_proxy"] {
            env.push((key.to_string(), "localhost,127.0.0.1,::1".to_string()));
        }
        if self.platform_api && self.s3 {
            env.push(("AWS_ENDPOINT_URL".to_string(), url.clone()));
        }
        if self.platform_api {
            env.push(("BATON_API".to_string(), url));
        }
        env
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // The listener and every connection it serves close with the task.
        self.server.abort();
    }
}

/// Runs `work` in a thread of its own, which ends with it (so a namespace it entered never
/// leaks into a thread the runtime reuses).
fn in_new_thread<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    std::thread::Builder::new()
        .name("baton-netns".into())
        .spawn(work)?
        .join()
        .map_err(|_| io::Error::other("the namespace thread panicked"))?
}

/// In this (short-lived) thread: enters `namespace` and makes a socket there.
fn in_namespace(namespace: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: setns and socket take a valid descriptor and flags; a socket's descriptor is
    // owned by the OwnedFd made from it.
    unsafe {
        if libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// `struct ifreq` as `SIOCGIFFLAGS` and `SIOCSIFFLAGS` read it (40 bytes on Linux).
#[repr(C)]
struct InterfaceFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

/// Brings up the loopback interface of this thread's network namespace (a new one has it
/// down).
fn loopback_up() -> io::Result<()> {
    // SAFETY: a datagram socket for ioctls, owned by `socket`; the ioctls read and write an
    // `InterfaceFlags` that lives across the calls and is as large as the kernel's ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let mut request = InterfaceFlags {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _rest: [0; 22],
        };
        request.name[..2].copy_from_slice(b"lo");
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) != 0 {
            return Err(io::Error::last_os_error());
        }
        request.flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_request_is_as_large_as_the_kernels() {
        assert_eq!(std::mem::size_of::<InterfaceFlags>(), 40);
    }
}
