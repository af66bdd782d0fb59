"""Weir manifest plugin "program-info": the component entry for componentize-py
(world ``manifest-plugin`` of wit/plugin.wit, package weir:plugin@0.1.0).

A ``result<T, string>`` export returns T or raises ``componentize_py_types.Err(str)``;
any other exception would trap, so every export turns errors into ``Err``.
"""

from typing import List, Optional

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import (
    CueEvent,
    FailurePolicy,
    Level,
    PluginInfo,
    RequestContext,
)

import program_info

# Runs each path once while componentize-py snapshots the module, so the first call in a
# fresh instance (the host makes one per call) does not pay for first-use setup.
program_info.warm_up()

# The config from the last successful `init` in this instance. The host calls `init`
# with the plugin's config; a transform in an instance that has not seen it fails (and
# the host passes the playlist through).
_config: Optional[program_info.Config] = None


def _run(f, *args):
    if _config is None:
        raise Err("program-info: no config in this instance (init was not called)")
    try:
        return f(*args, _config)
    except program_info.PluginError as e:
        raise Err(str(e))
    except Exception as e:  # a bug: answer err rather than trap
        raise Err(f"program-info: internal error: {e!r}")


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> PluginInfo:
        global _config
        try:
            _config = program_info.parse_config(config)
        except program_info.PluginError as e:
            raise Err(str(e))
        host.log(Level.INFO, f'program-info: title "{_config.title}", class {_config.klass}')
        return PluginInfo(varies_on=[], failure_policy=FailurePolicy.PASS_THROUGH)

    def transform_media_playlist(self, ctx: RequestContext, cues: List[CueEvent], playlist: str) -> str:
        return _run(program_info.transform_media, playlist)

    def transform_multivariant_playlist(self, ctx: RequestContext, playlist: str) -> str:
        return _run(program_info.transform_multivariant, playlist)

    def resolve_asset_list(self, ctx: RequestContext, cue_id: int) -> str:
        raise Err("no interstitials")
