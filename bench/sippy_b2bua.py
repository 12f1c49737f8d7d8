"""Start Sippy B2BUA 2.5.0 for bench/run.py, with one UDP worker.

Sippy's ``b2bua`` console script is ``sippy.b2bua:main_func``, which parses
``sys.argv`` itself (``-f`` foreground, ``-u`` no RADIUS auth, ``-A 0`` no
accounting, ``-l`` address, ``-p`` port, ``-s host:port`` static route,
``-c`` command socket).  This launcher runs that same entry point, but first
sets ``Udp_server_opts.nworkers = 1``: with the default three UDP sender
threads Sippy may send a 200 OK before the 180 Ringing of the same call, and
SIPp's built-in ``uac`` scenario counts such a reordered call as failed,
which is a property of the thread pool, not of the B2BUA's capacity.

Usage: python bench/sippy_b2bua.py -f -u -A 0 -l 127.0.0.1 -p 15070 \\
           -s 127.0.0.1:5071 -c /tmp/b2bua.sock
"""

from __future__ import annotations

import sys

from sippy.Udp_server import Udp_server_opts

Udp_server_opts.nworkers = 1

from sippy.b2bua import main_func  # noqa: E402  (must come after the patch)

if __name__ == "__main__":
    sys.argv[0] = "b2bua"
    main_func()
