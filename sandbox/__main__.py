"""`python -m sandbox serve …`: the emulators in their own process (used by `Sandbox(process=True)`)."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime

from sandbox.common.faults import FaultConfig
from sandbox.common.org import ORGS
from sandbox.common.server import EmulatorServer
from sandbox.runtime import SYSTEMS, build_emulators


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="generate a world and serve the three emulators until killed")
    serve.add_argument("--people", type=int, default=2000)
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--anchor", required=True)
    serve.add_argument("--faults-json", default="{}")
    serve.add_argument("--no-limits", action="store_true")
    serve.add_argument("--org", choices=ORGS, default="full")
    serve.add_argument("--history", action=argparse.BooleanOptionalAction, default=None,
                       help="records archived/deleted before install (default: on for --org plain)")
    for system in SYSTEMS:
        serve.add_argument(f"--{system}-port", type=int, default=0)
    args = parser.parse_args()

    from sandbox.world import generate

    world = generate(args.people, args.seed, datetime.fromisoformat(args.anchor), org=args.org, history=args.history)
    faults = {system: FaultConfig.model_validate(config) for system, config in json.loads(args.faults_json).items()}
    faults = {system: faults.get(system, FaultConfig(seed=args.seed)) for system in SYSTEMS}
    urls = {}
    for system, emulator in build_emulators(faults, limits=not args.no_limits, org=args.org).items():
        emulator.load(getattr(world, system))
        urls[system] = EmulatorServer(emulator, getattr(args, f"{system}_port")).start().url
    print("READY " + json.dumps(urls), flush=True)
    asyncio.run(asyncio.Event().wait())


if __name__ == "__main__":
    main()
