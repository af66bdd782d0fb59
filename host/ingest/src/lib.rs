//! Weir's contribution ingest: RTMP (rml_rtmp) with FLV demux, stream-key auth and takeover.
