//! Weir's packager: CMAF init/part/segment writer and LL-HLS playlist model. Pure: no IO, no clock.
