"""Real Postfix and Dovecot instances for tests: own config dirs, free loopback ports, stopped after.

Nothing here touches the system's own mail configuration or its ports 25/143.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

POSTFIX = shutil.which("postfix") or ("/usr/sbin/postfix" if Path("/usr/sbin/postfix").exists() else None)
DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
POSTFIX_HINT = "apt-get install postfix"
DOVECOT_HINT = "apt-get install dovecot-imapd"
POP3 = Path("/usr/lib/dovecot/pop3").exists()
POP3_HINT = "apt-get install dovecot-pop3d"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Postfix:
    port: int
    config_dir: Path
    maillog: Path

    def log_text(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def wait_log(self, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_text()
            if needle in text:
                return text
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} never appeared in Postfix's log:\n{self.log_text()[-3000:]}")


@contextmanager
def postfix(base: Path, relay_domain: str, relay_port: int, local_domain: str = "local.test") -> Iterator[Postfix]:
    """Postfix on 127.0.0.1:<free port> delivering ``local_domain`` locally (any unknown user there
    bounces) and relaying mail for ``relay_domain`` to 127.0.0.1:``relay_port``."""
    assert POSTFIX
    _traversable(base)
    cfg, queue, data = base / "etc", base / "spool", base / "lib"
    for d in (cfg, queue, data):
        d.mkdir(parents=True)
    os.chown(data, *_ids("postfix"))
    port = free_port()
    maillog = base / "maillog"
    (cfg / "main.cf").write_text(f"""
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{local_domain}
mydomain = {local_domain}
mydestination = {local_domain}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
local_recipient_maps =
alias_maps =
alias_database =
smtpd_recipient_restrictions = permit_mynetworks, reject
transport_maps = inline:{{ {relay_domain}=smtp:[127.0.0.1]:{relay_port} }}
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file = {maillog}
maillog_file_prefixes = {base}
syslog_name = mailtally-test-postfix
biff = no
delay_warning_time = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
bounce_queue_lifetime = 1h
""")
    master = Path("/etc/postfix/master.cf").read_text() if Path("/etc/postfix/master.cf").exists() else ""
    master_lines = [ln for ln in master.splitlines() if not ln.startswith("smtp      inet")]
    master_lines.insert(0, f"127.0.0.1:{port} inet n - n - - smtpd")
    if not any(ln.startswith("postlog") for ln in master_lines):
        master_lines.append("postlog   unix-dgram n  -       n       -       1       postlogd")
    (cfg / "master.cf").write_text("\n".join(master_lines) + "\n")
    env = {**os.environ, "MAIL_CONFIG": str(cfg)}
    subprocess.run([POSTFIX, "-c", str(cfg), "set-permissions"], env=env, capture_output=True, timeout=60)
    start = subprocess.run([POSTFIX, "-c", str(cfg), "start"], env=env, capture_output=True, text=True, timeout=60)
    if start.returncode != 0:
        raise RuntimeError(f"postfix did not start: {start.stdout}{start.stderr}")
    try:
        wait_for_port(port)
        yield Postfix(port, cfg, maillog)
    finally:
        subprocess.run([POSTFIX, "-c", str(cfg), "stop"], env=env, capture_output=True, timeout=60)


def _traversable(path: Path) -> None:
    """The daemons drop to their own users: every directory above their files must let them pass."""
    path.mkdir(parents=True, exist_ok=True)
    for p in (path, *path.parents):
        if p == Path("/"):
            break
        mode = p.stat().st_mode
        if mode & 0o011 != 0o011:
            p.chmod(mode | 0o011)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


@dataclass
class Dovecot:
    port: int
    user: str
    password: str
    pop3_port: int = 0


def _login_service(protocol: str, port: int, unchrooted: bool = False) -> str:
    """Dovecot's login service for ``protocol`` on 127.0.0.1:``port``, its TLS listener off (and
    with ``unchrooted``, not chrooted)."""
    chroot = "  chroot =\n" if unchrooted else ""
    return (f"service {protocol}-login {{\n  inet_listener {protocol} {{\n    address = 127.0.0.1\n    port = {port}\n"
            f"  }}\n  inet_listener {protocol}s {{\n    port = 0\n  }}\n{chroot}}}\n")


@contextmanager
def dovecot(base: Path, user: str = "bounces", password: str = "secret-pw", pop3: bool = False) -> Iterator[Dovecot]:
    """Dovecot IMAP on 127.0.0.1:<free port> with one user whose mail is under ``base``; with
    ``pop3``, POP3 too (on ``pop3_port``), over the same mail."""
    assert DOVECOT
    _traversable(base)
    port = free_port()
    pop3_port = free_port() if pop3 else 0
    pop3_conf = _login_service("pop3", pop3_port, unchrooted=True) if pop3 else ""
    run, mail, users = base / "run", base / "mail", base / "users"
    for d in (run, mail):
        d.mkdir(parents=True)
    uid, gid = _ids("dovecot")
    os.chown(mail, uid, gid)
    users.write_text(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{mail}/%u\n")
    conf = base / "dovecot.conf"
    conf.write_text(f"""
protocols = imap{" pop3" if pop3 else ""}
listen = 127.0.0.1
base_dir = {run}
state_dir = {run}
instance_name = mailtally-test-{port}
ssl = no
auth_mechanisms = plain login
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
first_valid_uid = 1
log_path = {base}/dovecot.log
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
{_login_service("imap", port)}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
{pop3_conf}""")
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for_port(port)
            if pop3:
                wait_for_port(pop3_port)
        except RuntimeError:
            proc.kill()
            out = proc.communicate(timeout=10)[0].decode(errors="replace")
            log = (base / "dovecot.log").read_text() if (base / "dovecot.log").exists() else ""
            raise RuntimeError(f"dovecot did not start: {out}{log}") from None
        yield Dovecot(port, user, password, pop3_port)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
