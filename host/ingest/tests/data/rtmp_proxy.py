"""Relays one TCP connection from 127.0.0.1:LISTEN to 127.0.0.1:TARGET and writes every
byte the client sends to OUT: python3 rtmp_proxy.py LISTEN TARGET OUT (see README.md)."""
import socket, threading, sys
lport, dport, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lport)); ls.listen(1)
c, _ = ls.accept()
s = socket.create_connection(("127.0.0.1", dport))
f = open(out, "wb")
def up():
    while True:
        b = c.recv(65536)
        if not b: break
        f.write(b); f.flush(); s.sendall(b)
    s.shutdown(socket.SHUT_WR)
def down():
    while True:
        b = s.recv(65536)
        if not b: break
        try: c.sendall(b)
        except OSError: break
t1 = threading.Thread(target=up); t2 = threading.Thread(target=down)
t1.start(); t2.start(); t1.join(); t2.join(timeout=2); f.close()
