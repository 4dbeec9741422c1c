"""``python -m aptio._server_main``: the entry point of an aptio server process (started by
``aptio.start_server``; reads its session on standard input)."""

from ._runtime.server_process import main

if __name__ == "__main__":
    main()
