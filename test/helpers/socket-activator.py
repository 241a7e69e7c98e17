# A stand-in for systemd's ferry.socket + ferry.service (Restart=always): binds and listens on argv[1] once, then
# runs argv[2:] with the socket as fd 3 and LISTEN_PID/LISTEN_FDS set (sd_listen_fds(3)), again each time it
# exits. Prints "spawned <pid>" on stdout as each child starts. Ends (and takes the socket away) on SIGTERM.
import os, signal, socket, sys

path, argv = sys.argv[1], sys.argv[2:]
os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
try:
    os.unlink(path)
except FileNotFoundError:
    pass
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.bind(path)
os.chmod(path, 0o660)
sock.listen(512)
child = 0

def stop(_sig, _frame):
    if child:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.unlink(path)
    os._exit(0)

signal.signal(signal.SIGTERM, stop)
while True:
    child = os.fork()
    if child == 0:
        os.dup2(sock.fileno(), 3)
        os.set_inheritable(3, True)
        env = dict(os.environ, LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
        os.execve(argv[0], argv, env)
    print(f"spawned {child}", flush=True)
    os.waitpid(child, 0)
