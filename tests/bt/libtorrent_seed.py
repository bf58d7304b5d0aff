"""A real BitTorrent seeder (libtorrent) for the reference leecher's tests.

libtorrent_seed.py TORRENT DIR   seeds TORRENT's file, found in DIR, on
                                 127.0.0.1 only (no DHT, local discovery,
                                 UPnP or NAT-PMP); prints the port it listens
                                 on once the file is checked and seeding, then
                                 seeds until stdin closes or 120 s pass
"""
import sys
import threading
import time

import libtorrent as lt


def main(torrent, save):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
    })
    h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
    deadline = time.time() + 30
    while not h.status().is_seeding:
        if time.time() > deadline:
            print("not seeding after 30 s:", h.status().state, file=sys.stderr)
            sys.exit(1)
        time.sleep(0.05)
    print(ses.listen_port(), flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait(120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
