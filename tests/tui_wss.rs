//! `shortbox connect wss://…`: the client's network task reaches a real engine behind a TLS
//! terminator, trusting a private certificate authority given with `--ca-cert`, and refuses
//! the same server when that authority is not trusted.

mod common;

use std::sync::Arc;
use std::time::Duration;

use shortbox::client::net::{self, NetEvent};
use shortbox::protocol::Role;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Terminates TLS for `localhost` (the fixture certificate) and forwards to `backend`.
async fn tls_terminator(backend: std::net::SocketAddr) -> u16 {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{FIXTURES}/localhost-cert.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{FIXTURES}/localhost-key.pem")).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

async fn first_outcome(rx: &mut mpsc::UnboundedReceiver<NetEvent>) -> NetEvent {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a net event in time")
            .expect("the net task is alive");
        match e {
            NetEvent::Status(net::NetStatus::Connecting { .. }) => continue,
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_reaches_the_engine_through_tls_with_a_private_ca() {
    let t = common::TestEngine::start(common::DEMO).await;
    let token = t.token(Role::Agent, &["acme"]).await;
    let port = tls_terminator(t.addr).await;
    let url = format!("wss://localhost:{port}");

    let tls = net::tls_config(&[format!("{FIXTURES}/test-ca.pem").into()]).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<NetEvent>();
    let _trusted = net::spawn_with_tls(url.clone(), token.clone(), tls, tx);
    match first_outcome(&mut rx).await {
        NetEvent::Connected(hello) => assert_eq!(hello.principal.tenants[0].id, "acme"),
        other => panic!("expected hello over TLS, got {other:?}"),
    }

    // Without the private CA the certificate is not trusted: no hello, a reason instead.
    let (tx, mut rx) = mpsc::unbounded_channel::<NetEvent>();
    let _untrusted = net::spawn_with_tls(url, token, None, tx);
    match first_outcome(&mut rx).await {
        NetEvent::Connected(_) => panic!("connected to a server whose certificate is not trusted"),
        NetEvent::Status(status) => {
            let said = format!("{status:?}").to_lowercase();
            assert!(
                said.contains("certificate") || said.contains("tls") || said.contains("issuer"),
                "{said}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}
