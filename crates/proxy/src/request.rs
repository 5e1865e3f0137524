//! The request path, top to bottom:
//!
//! load snapshot → normalise path → route → protocol check (426 / redirect) → upstream URI →
//! upstream headers → connect (retrying on the next target) → send → response headers.
//!
//! Plugins (issue: plugin runtime) slot in between routing and connecting (rewrite/access) and on
//! the response (header_filter/body_filter/log). Nothing here parses config or walks all routes.

use std::convert::Infallible;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};

use gatehouse_config::Protocol;
use gatehouse_plugins::{ErrorCtx, PluginState, RequestCtx};
use gatehouse_router::{path, Headers, Request as RouteRequest, RequestExtra};

use crate::body::{Progress, ProxyBody, RequestBody};
use crate::forwarded::{self, Peer};
use crate::h1::{self, H1Body};
use crate::names::{strip_hop_by_hop, Name, Present};
use crate::observe::{self, Facts};
use crate::pool::{ConnectError, PoolKey, Sender, Upstream};
use crate::respond::{self, LocalError};
use crate::server::Worker;
use crate::snapshot::{Destination, ServiceRt, Snapshot};

static VIA: HeaderValue =
    HeaderValue::from_static(concat!("1.1 gatehouse/", env!("CARGO_PKG_VERSION")));
static X_KONG_REQUEST_ID: HeaderName = HeaderName::from_static("x-kong-request-id");
static X_KONG_PROXY_LATENCY: HeaderName = HeaderName::from_static("x-kong-proxy-latency");
static X_KONG_UPSTREAM_LATENCY: HeaderName = HeaderName::from_static("x-kong-upstream-latency");
static X_KONG_RESPONSE_LATENCY: HeaderName = HeaderName::from_static("x-kong-response-latency");
static KONG_DEBUG: HeaderName = HeaderName::from_static("kong-debug");

/// Reads request headers for the router without copying them.
struct HeaderLookup<'a>(&'a HeaderMap);

impl Headers for HeaderLookup<'_> {
    fn any_value(&self, lower_name: &str, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.0
            .get_all(lower_name)
            .iter()
            .any(|v| v.to_str().is_ok_and(&mut *f))
    }
}

/// Per-request facts carried from routing to the response.
struct Routed {
    route: usize,
    service: usize,
}

pub(crate) async fn handle(
    w: Rc<Worker>,
    peer: Rc<Peer>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    peer.requests.set(peer.requests.get() + 1);
    let snap = w.cell.load_full();
    let request_id = w.next_request_id();
    let mut st = PluginState::new(None, None);
    // gRPC is HTTP/2 only: HTTP/1.1 requests skip the header lookup.
    let grpc = req.version() == Version::HTTP_2 && crate::grpc::is_grpc(req.headers());
    observe::request_started(&w);
    let mut facts = Facts::new(started);
    observe::capture(&w, &peer, &snap, &req, &request_id, &mut facts);
    let (mut resp, local) =
        match proxy(&w, &peer, &snap, &mut st, &request_id, &mut facts, req).await {
            Ok(resp) => {
                facts.from_upstream = true;
                (resp, false)
            }
            Err(mut local) => {
                if grpc {
                    crate::grpc::error_to_grpc(&mut local);
                }
                if w.opts.headers.response_latency {
                    local
                        .headers_mut()
                        .insert(X_KONG_RESPONSE_LATENCY.clone(), ms_since(started));
                }
                (local, true)
            }
        };
    // header_filter and log run for the plugins collected in access, also after an early
    // exit or a gateway error (global plugins when no route matched).
    if !snap.plugins.is_empty_for(st.route, st.service) {
        let status = resp.status();
        if local {
            // (Upstream responses went through header_filter in `proxy`.)
            snap.plugins
                .run_header_filter(&mut st, status, resp.headers_mut());
        }
        snap.plugins.run_log(&st, status);
    }
    observe::log_phase(&w, &snap, &st, resp.status(), resp.headers(), &mut facts);
    if w.opts.headers.request_id {
        resp.headers_mut()
            .insert(X_KONG_REQUEST_ID.clone(), request_id);
    }
    Ok(resp)
}

/// `Ok` = the upstream answered; `Err` = the gateway (or a plugin) answered itself.
async fn proxy(
    w: &Worker,
    peer: &Peer,
    snap: &Snapshot,
    st: &mut PluginState,
    request_id: &HeaderValue,
    facts: &mut Facts,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Response<ProxyBody>> {
    let started = facts.started;
    let server_header = w.opts.headers.server;
    let (mut parts, mut body) = req.into_parts();
    if parts.version == Version::HTTP_2 && !parts.headers.contains_key(header::HOST) {
        // An h2 client names the host in `:authority`: make it the Host header, as nginx's
        // `$host`, so routing, X-Forwarded-Host and preserve_host see it.
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(header::HOST, v);
        }
    }
    // The body as read before access (key-auth `key_in_body`), else it streams later.
    let mut read_early: Option<Bytes> = None;
    // Gateway and plugin errors render per `Accept` (`kong.response.error`).
    let rid = ErrorCtx::new(
        request_id.to_str().unwrap_or(""),
        parts.headers.get(header::ACCEPT),
    );
    // A cheap (reference-counted) copy, so plugins may edit the headers while we read it.
    let host_value = parts.headers.get(header::HOST).cloned();
    let host = host_value
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");

    // Normalise and route. The path buffer is reused across requests on this thread: taken out
    // of its cell and put back below, since access may await (redis) and a RefCell borrow
    // held across an await would collide with the thread's next request.
    let mut upstream_uri = w.uri_buf.take();
    let (routed, debug, present) = {
        let mut scratch = w.path_buf.take();
        let norm = &mut scratch;
        norm.clear();
        if path::normalize(parts.uri.path(), norm).is_err() {
            return Err(respond::error(LocalError::BadRequest, rid, server_header));
        }
        let route_req = RouteRequest {
            method: parts.method.as_str(),
            host,
            dst_port: peer.local_port,
            path: norm,
            sni: peer.sni.as_deref(),
            https: peer.https,
            headers: &HeaderLookup(&parts.headers),
        };
        let extra = RequestExtra::default()
            .with_net(peer.addr, peer.local.ip())
            .with_query(parts.uri.query().unwrap_or(""));
        let m = snap
            .router
            .find_cached_with(&mut w.match_cache.borrow_mut(), &route_req, &extra);
        let Some(m) = m else {
            return Err(respond::error(LocalError::NoRoute, rid, server_header));
        };
        let route = &snap.routes[m.route];

        // Protocol enforcement happens after routing, as in Kong.
        if route.https_only && !forwarded::client_scheme_is_https(peer, &parts.headers) {
            return Err(https_required(
                route.https_redirect_status_code,
                host,
                &parts.uri,
                server_header,
            ));
        }
        if route.grpc_only {
            let https = forwarded::client_scheme_is_https(peer, &parts.headers);
            let (h, v) = (&parts.headers, parts.version);
            if let Some(resp) =
                crate::grpc::route_check(h, v, https, route.grpcs_only, server_header)
            {
                return Err(resp);
            }
        }

        // Plugins: rewrite (global) and access (the route's chain). They edit the request
        // headers in place and may answer early.
        (st.route, st.service) = (Some(m.route), m.service);
        if !snap.plugins.is_empty_for(st.route, st.service) {
            let query = parts.uri.query().unwrap_or("");
            let req = (
                &parts.method,
                host,
                norm.as_str(),
                query,
                &mut parts.headers,
            );
            let access = access_phase(w, peer, snap, st, req, &mut body, rid);
            read_early = access.await?;
        }

        let Some(service) = m.service else {
            let msg = "no Service found with those values";
            return Err(respond::exit_message(
                StatusCode::SERVICE_UNAVAILABLE,
                msg,
                server_header,
            ));
        };

        let svc = &snap.services[service];
        upstream_uri.clear();
        match &st.path_rewrite {
            Some(p) => upstream_uri.push_str(p), // request-transformer `replace.uri`
            None => path::upstream_path(svc.path.as_deref(), norm, m.strip_len, &mut upstream_uri),
        }
        let query = match &st.query_rewrite {
            Some(q) => Some(q.as_str()).filter(|q| !q.is_empty()),
            None => parts.uri.query(),
        };
        if let Some(q) = query {
            upstream_uri.push('?');
            upstream_uri.push_str(q);
        } else if st.query_rewrite.is_none()
            && parts
                .uri
                .path_and_query()
                .is_some_and(|pq| pq.as_str().ends_with('?'))
        {
            upstream_uri.push('?'); // Kong keeps a bare trailing `?`
        }
        let debug =
            w.opts.allow_debug_header && parts.headers.get(&KONG_DEBUG).is_some_and(|v| v == "1");
        // Room for what we add (X-Forwarded-*, X-Real-IP, request id): one growth at most.
        parts.headers.reserve(12);
        let present = Present::scan(&parts.headers);
        let path = parts.uri.path();
        forwarded::apply(
            &mut parts.headers,
            present,
            peer,
            &w.opts.real_ip_header,
            || HeaderValue::from_maybe_shared(w.bytes(path.as_bytes())).ok(),
            m.prefix(norm).unwrap_or(""),
        );
        w.path_buf.replace(scratch); // error paths above just drop it
        (
            Routed {
                route: m.route,
                service,
            },
            debug,
            present,
        )
    };
    let route = &snap.routes[routed.route];
    let svc = &snap.services[routed.service];

    // Upstream request: same method, headers minus hop-by-hop, our URI and Host.
    let pq = PathAndQuery::from_maybe_shared(w.bytes(upstream_uri.as_bytes()));
    w.uri_buf.replace(upstream_uri);
    let Ok(pq) = pq else {
        return Err(respond::error(LocalError::BadRequest, rid, server_header));
    };
    let upgrade = match present.has(Name::Upgrade) {
        true => crate::upgrade::take(parts.version, &parts.headers, &mut parts.extensions),
        false => None,
    };
    parts.uri = Uri::from(pq);
    observe::upstream_uri(facts, &parts.uri);
    parts.version = Version::HTTP_11;
    if let Some(m) = st.method_rewrite.take() {
        parts.method = m;
    }
    strip_hop_by_hop(&mut parts.headers, present);
    if let Some(u) = &upgrade {
        u.restore(&mut parts.headers);
    }
    if let Some(h) = st.host_rewrite.take() {
        parts.headers.insert(header::HOST, h);
    } else if !route.preserve_host || !parts.headers.contains_key(header::HOST) {
        if let Some(h) = &svc.host_header {
            parts.headers.insert(header::HOST, h.clone());
        }
    }
    observe::trace(snap, st, &mut parts.headers, facts);
    // TLS upstreams: SNI (and the name verified) is the Host sent upstream, without its port.
    let sni = svc.tls.as_ref().and_then(|_| {
        let host = parts.headers.get(header::HOST)?.to_str().ok()?;
        Some(std::sync::Arc::<str>::from(forwarded::host_part(host)))
    });
    if svc.h2 {
        // HTTP/2 upstreams take the authority in the URI (`:authority`), not a Host header.
        crate::grpc::h2_upstream_uri(&mut parts, svc.tls.is_some());
    }
    if w.opts.upstream_request_id {
        parts
            .headers
            .insert(X_KONG_REQUEST_ID.clone(), request_id.clone());
    }
    // A plugin that must see the whole body (request-transformer) or bound a chunked one
    // (request-size-limiting) gets it buffered; everything else streams.
    let needs_body = snap.plugins.needs_request_body(st);
    let limit = snap.plugins.request_body_limit(st);
    let read_early = read_early.map(|b| st.body_rewrite.take().map_or(b, Bytes::from));
    let buffered = read_early.is_some() || needs_body;
    let (body, upload) = if buffered || (limit.is_some() && !body.is_end_stream()) {
        let read = read_request_body(
            snap,
            st,
            body,
            read_early,
            needs_body,
            limit,
            svc,
            rid,
            server_header,
        );
        let bytes = read.await?;
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        (RequestBody::Buffered(Some(bytes)), None)
    } else {
        RequestBody::streamed(body)
    };
    let mut upstream_req = Request::from_parts(parts, body);

    // Connect (retrying on the next target), then send. Which failures may be retried is
    // nginx's rule (Kong proxies through it): connection errors, unless the request cannot be
    // sent again (a streamed body already read) or was sent with a non-idempotent method. A
    // pooled connection the upstream closed before answering is retried without counting.
    let mut failure = LocalError::BadGateway;
    let mut attempts_left = u32::from(svc.retries) + 1;
    let timeouts = h1::Timeouts {
        write: svc.write_timeout,
        read: svc.read_timeout,
    };
    let sent_at;
    let answer = loop {
        if attempts_left == 0 {
            return Err(respond::error(failure, rid, server_header));
        }
        attempts_left -= 1;
        let try_started = Instant::now();
        let target = match &svc.destination {
            Destination::Host(t) => t,
            Destination::Balancer(i) => match snap.balancers[*i].pick() {
                Some(t) => t,
                None => return Err(respond::error(LocalError::NoPeer, rid, server_header)),
            },
        };
        observe::upstream_try(facts, &target.authority, target.port, try_started);
        let up = Upstream {
            tls: svc.tls.as_deref(),
            sni: sni.clone(),
            h2: svc.h2,
        };
        let conn = match w.pool.checkout(target, &up, svc.connect_timeout).await {
            Ok(c) => c,
            Err(e) => {
                failure = match e {
                    ConnectError::Resolve(_) => LocalError::NameResolution,
                    ConnectError::Timeout => LocalError::Timeout,
                    ConnectError::Refused(_) | ConnectError::Tls(_) | ConnectError::Handshake => {
                        LocalError::BadGateway
                    }
                };
                tracing::debug!(target = %target.authority, error = %e, "upstream connect failed");
                continue;
            }
        };
        let now = Instant::now();
        let mut sender = match conn.sender {
            Sender::H1(mut c) => match h1::exchange(&mut c, &mut upstream_req, timeouts).await {
                Ok(head) => {
                    sent_at = now;
                    break Answer::H1(head, c, conn.key);
                }
                Err(f) => {
                    tracing::debug!(error = %f.error, "upstream exchange failed");
                    let method = upstream_req.method();
                    let idempotent = !(method == Method::POST
                        || method == Method::PATCH
                        || method.as_str() == "LOCK");
                    match f.error {
                        h1::Error::Timeout => {
                            return Err(respond::error(LocalError::Timeout, rid, server_header))
                        }
                        h1::Error::Io(_) | h1::Error::Closed
                            if f.replayable && (idempotent || !f.sent) =>
                        {
                            if conn.reused && !f.received {
                                attempts_left += 1;
                            }
                            failure = LocalError::BadGateway;
                            continue;
                        }
                        _ => {
                            return Err(respond::error(LocalError::BadGateway, rid, server_header))
                        }
                    }
                }
            },
            Sender::H2(s) => s,
        };
        let exchange = sender.try_send_request(upstream_req);
        match with_timeouts(exchange, upload.as_deref(), now, svc).await {
            Ok(Ok(resp)) => {
                sent_at = now;
                break Answer::H2(resp);
            }
            Ok(Err(mut e)) => match e.take_message() {
                Some(req) if conn.reused => {
                    upstream_req = req;
                    attempts_left += 1;
                }
                Some(req) => {
                    upstream_req = req;
                    failure = LocalError::BadGateway;
                }
                None => {
                    tracing::debug!(error = %e.error(), "upstream exchange failed");
                    return Err(respond::error(LocalError::BadGateway, rid, server_header));
                }
            },
            Err(_) => return Err(respond::error(LocalError::Timeout, rid, server_header)),
        }
    };
    let upstream_ms = sent_at.elapsed().as_millis();
    let upstream_latency = ms_value(upstream_ms);
    (facts.sent_at, facts.upstream_ms) = (Some(sent_at), Some(upstream_ms as u64));
    let (mut parts, body) = match answer {
        Answer::H1(head, conn, key) => {
            if head.framing == h1::Framing::Upgrade {
                let Some(u) = upgrade else {
                    // A 101 nobody asked for: the connection now speaks something else.
                    return Err(respond::error(LocalError::BadGateway, rid, server_header));
                };
                // WebSocket: the connection now belongs to the tunnel, never to the pool.
                u.tunnel(*conn, svc.read_timeout.max(svc.write_timeout));
                return Ok(Response::from_parts(
                    head.parts,
                    ProxyBody::Local(Full::new(Bytes::new())),
                ));
            }
            // An upgrade request answered otherwise leaves the connection in doubt.
            let reusable = head.reusable && upgrade.is_none();
            let release = (w.pool.clone(), key);
            let body = H1Body::new(conn, head.framing, reusable, release, svc.read_timeout);
            (head.parts, ProxyBody::H1(body))
        }
        Answer::H2(resp) => {
            let (parts, body) = resp.into_parts();
            (parts, ProxyBody::H2(body))
        }
    };
    let present = Present::scan(&parts.headers);
    strip_hop_by_hop(&mut parts.headers, present);
    parts.headers.reserve(8);
    let h = &mut parts.headers;
    if w.opts.headers.upstream_latency {
        h.insert(X_KONG_UPSTREAM_LATENCY.clone(), upstream_latency);
    }
    if w.opts.headers.proxy_latency {
        h.insert(X_KONG_PROXY_LATENCY.clone(), ms_between(started, sent_at));
    }
    if w.opts.headers.via {
        h.append(header::VIA, VIA.clone());
    }
    if debug {
        add_debug_headers(h, snap, &routed);
    }
    // header_filter before the body: it decides whether response-transformer needs it.
    if !snap.plugins.is_empty_for(st.route, st.service) {
        snap.plugins
            .run_header_filter(st, parts.status, &mut parts.headers);
    }
    if snap.plugins.needs_response_body(st) {
        // response-transformer edits the JSON body: buffer it (the connection goes back to the
        // pool once read), then send the result with a fresh length.
        let Ok(bytes) = buffer(body, None, svc.read_timeout).await else {
            return Err(respond::error(LocalError::BadGateway, rid, server_header));
        };
        let bytes = snap
            .plugins
            .transform_response_body(st, &bytes)
            .map_or(bytes, Bytes::from);
        parts.headers.remove(header::CONTENT_LENGTH);
        return Ok(Response::from_parts(
            parts,
            ProxyBody::Local(Full::new(bytes)),
        ));
    }
    Ok(Response::from_parts(parts, body))
}

/// What answered: an HTTP/1.1 upstream (head parsed, body still on the connection) or an
/// HTTP/2 one through hyper.
enum Answer {
    H1(h1::ResponseHead, Box<h1::Connection>, PoolKey),
    H2(Response<Incoming>),
}

/// The whole request body, for plugins that edit it (request-transformer) or bound a chunked
/// one (request-size-limiting). Most requests stream instead.
#[allow(clippy::too_many_arguments)]
async fn read_request_body(
    snap: &Snapshot,
    st: &mut PluginState,
    body: Incoming,
    read_early: Option<Bytes>,
    needs_body: bool,
    limit: Option<u64>,
    svc: &ServiceRt,
    rid: ErrorCtx<'_>,
    server_header: bool,
) -> Result<Bytes, Response<ProxyBody>> {
    let read = match read_early {
        Some(b) if limit.is_some_and(|l| b.len() as u64 > l) => Err(Buffering::TooLarge),
        Some(b) => Ok(b),
        None => buffer(body, limit, svc.read_timeout).await,
    };
    let bytes = match read {
        Ok(b) => b,
        Err(Buffering::TooLarge) => {
            return Err(respond::plugin_exit(
                snap.plugins.request_body_too_large(st, rid),
                server_header,
            ));
        }
        Err(Buffering::Failed) => {
            return Err(respond::error(LocalError::BadRequest, rid, server_header))
        }
    };
    let bytes = match needs_body
        .then(|| snap.plugins.transform_request_body(st, &bytes))
        .flatten()
    {
        Some(b) => Bytes::from(b),
        None => bytes,
    };
    Ok(bytes)
}

/// Plugins' rewrite and access phases for a routed request: they edit the request headers in
/// place and may answer early (`Err`). Returns the body when a plugin had to read it first
/// (key-auth `key_in_body`). Requests without plugins never run it.
async fn access_phase(
    w: &Worker,
    peer: &Peer,
    snap: &Snapshot,
    st: &mut PluginState,
    (method, host, norm, query, headers): (&http::Method, &str, &str, &str, &mut HeaderMap),
    body: &mut Incoming,
    rid: ErrorCtx<'_>,
) -> Result<Option<Bytes>, Response<ProxyBody>> {
    let server_header = w.opts.headers.server;
    let mut read_early = None;
    if snap.plugins.needs_body_in_access(st.route, st.service) {
        let idle = st.service.map_or(std::time::Duration::from_secs(60), |s| {
            snap.services[s].read_timeout
        });
        match buffer(&mut *body, None, idle).await {
            Ok(b) => read_early = Some(b),
            Err(_) => return Err(respond::error(LocalError::BadRequest, rid, server_header)),
        }
    }
    let client_ip = forwarded::client_ip(peer, headers, &w.opts.real_ip_header);
    let mut ctx = RequestCtx::new(method, norm, query, headers, client_ip);
    ctx.protocol = if peer.https {
        Protocol::Https
    } else {
        Protocol::Http
    };
    ctx.request_id = rid.request_id;
    ctx.host = host.split(':').next().unwrap_or(host);
    ctx.port = peer.local_port;
    ctx.server_addr = peer.local.ip();
    ctx.connection = peer.serial;
    ctx.connection_requests = peer.requests.get();
    ctx.body = read_early.as_deref();
    let plugins = &snap.plugins;
    let exit = match plugins.run_rewrite(st, &mut ctx) {
        Some(exit) => Some(exit),
        // rate-limiting `policy: redis` waits on redis in access.
        None if plugins.needs_async(st) => plugins.run_access_async(st, &mut ctx).await,
        None => plugins.run_access(st, &mut ctx),
    };
    if let Some(exit) = exit {
        return Err(respond::plugin_exit(exit, server_header));
    }
    Ok(read_early)
}

/// Awaits the upstream exchange: while the request body is still streaming, up to
/// `write_timeout` may pass between two reads of it; once it is sent (or for bodyless
/// requests), `read_timeout` bounds the wait for the response head.
async fn with_timeouts<F: std::future::Future>(
    exchange: F,
    upload: Option<&Progress>,
    sent: Instant,
    svc: &ServiceRt,
) -> Result<F::Output, ()> {
    tokio::pin!(exchange);
    let mut read_from = sent;
    loop {
        let uploading = upload.is_some_and(|p| !p.done.get());
        let deadline = if uploading {
            upload.and_then(|p| p.last.get()).unwrap_or(sent) + svc.write_timeout
        } else {
            read_from + svc.read_timeout
        };
        tokio::select! {
            out = &mut exchange => return Ok(out),
            _ = crate::timer::sleep_until(deadline) => {
                let now = Instant::now();
                match upload {
                    Some(p) if p.done.get() && read_from == sent => {
                        read_from = p.last.get().unwrap_or(now);
                    }
                    Some(p) if !p.done.get() && p.last.get().is_some_and(|l| l + svc.write_timeout > now) => {}
                    _ => return Err(()),
                }
            }
        }
    }
}

enum Buffering {
    TooLarge,
    Failed,
}

/// Reads a whole body (at most `limit` bytes), each frame within `idle`.
async fn buffer<B>(
    mut body: B,
    limit: Option<u64>,
    idle: std::time::Duration,
) -> Result<Bytes, Buffering>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    use http_body_util::BodyExt;
    let mut out = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Ok(Some(Ok(f))) => f,
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Err(_))) | Err(_) => return Err(Buffering::Failed),
        };
        if let Ok(data) = frame.into_data() {
            if limit.is_some_and(|l| (out.len() + data.len()) as u64 > l) {
                return Err(Buffering::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
}

fn https_required(code: u16, host: &str, uri: &Uri, server_header: bool) -> Response<ProxyBody> {
    if code == 426 {
        let mut resp = respond::exit_message(
            StatusCode::UPGRADE_REQUIRED,
            "Please use HTTPS protocol",
            server_header,
        );
        let h = resp.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(
            header::UPGRADE,
            HeaderValue::from_static("TLS/1.2, HTTP/1.1"),
        );
        return resp;
    }
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let mut resp = respond::empty(status, server_header);
    let host = host.split(':').next().unwrap_or(host);
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    if let Ok(loc) = HeaderValue::from_str(&format!("https://{host}{target}")) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

fn add_debug_headers(h: &mut HeaderMap, snap: &Snapshot, routed: &Routed) {
    let route = &snap.routes[routed.route];
    let svc = &snap.services[routed.service];
    h.insert(
        HeaderName::from_static("kong-route-id"),
        route.id_header.clone(),
    );
    if let Some(n) = &route.name_header {
        h.insert(HeaderName::from_static("kong-route-name"), n.clone());
    }
    h.insert(
        HeaderName::from_static("kong-service-id"),
        svc.id_header.clone(),
    );
    if let Some(n) = &svc.name_header {
        h.insert(HeaderName::from_static("kong-service-name"), n.clone());
    }
}

/// Milliseconds as a header value; small values (nearly all latencies) come from a table
/// built once, so the common case allocates nothing.
fn ms_value(ms: u128) -> HeaderValue {
    static SMALL: std::sync::OnceLock<Vec<HeaderValue>> = std::sync::OnceLock::new();
    let table = SMALL.get_or_init(|| {
        (0..1000u32)
            .map(|n| HeaderValue::from_static(Box::leak(n.to_string().into_boxed_str())))
            .collect()
    });
    match table.get(ms as usize) {
        Some(v) => v.clone(),
        None => HeaderValue::from(ms as u64),
    }
}

fn ms_since(t: Instant) -> HeaderValue {
    ms_value(t.elapsed().as_millis())
}

fn ms_between(a: Instant, b: Instant) -> HeaderValue {
    ms_value(b.saturating_duration_since(a).as_millis())
}
