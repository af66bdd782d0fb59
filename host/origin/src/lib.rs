//! Weir's HTTP origin: HTTP/1.1, HTTP/2 (TLS+ALPN, h2c), LL-HLS blocking reload and part streaming.
