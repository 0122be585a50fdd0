#!/usr/bin/env python3
"""A TCP proxy that makes a link cost what a WAN costs: every byte is held DELAY ms in each
direction before it is passed on, in order (the kernel here has no `netem`).

    scripts/wan_delay.py --listen ADDR:PORT --to ADDR:PORT [--listen ... --to ...] --delay-ms 30

Each --listen is paired with the --to at the same place. Runs until SIGTERM or SIGINT; a
connection whose other side cannot be reached is closed at once. scripts/regions runs one in
each region's namespace, listening on the region's WAN address for what the other region
reaches here (the PostgreSQL primary), forwarding to this region's loopback.
"""

import argparse
import asyncio
import signal
import sys
import time

CHUNK = 65536


def address(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


async def pipe(reader, writer, delay):
    """Copies reader to writer, each chunk held `delay` seconds after it arrived: a queue
    keeps their order while the reader goes on reading (the link's bandwidth is not the
    delay's)."""
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    delivering = asyncio.create_task(deliver())
    try:
        while data := await reader.read(CHUNK):
            queue.put_nowait((time.monotonic() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((time.monotonic() + delay, None))
    try:
        await delivering
    except (ConnectionError, OSError):
        pass


async def serve(listen, target, delay):
    async def connected(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.wait_for(
                asyncio.open_connection(*target), timeout=5)
        except (OSError, asyncio.TimeoutError):
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer, delay),
                             pipe(server_reader, client_writer, delay))
        for writer in (client_writer, server_writer):
            writer.close()

    return await asyncio.start_server(connected, *listen, reuse_address=True)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=address, action="append", required=True)
    parser.add_argument("--to", type=address, action="append", required=True)
    parser.add_argument("--delay-ms", type=float, default=30.0)
    args = parser.parse_args()
    if len(args.listen) != len(args.to):
        parser.error("give one --to for each --listen")
    servers = [await serve(listen, target, args.delay_ms / 1000)
               for listen, target in zip(args.listen, args.to)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("forwarding " + ", ".join(f"{l[0]}:{l[1]} -> {t[0]}:{t[1]}"
                                    for l, t in zip(args.listen, args.to))
          + f" with {args.delay_ms:g} ms each way", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
