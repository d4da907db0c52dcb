"""A Hub-compatible HTTP server on 127.0.0.1 for tests: the endpoints of DESIGN.md section 5, in memory.

Repos hold git-like commits (40-hex shas), branches, tags and pull-request refs (refs/pr/N); files are
regular or LFS (LFS blobs arrive through the batch endpoint and a PUT). Errors carry the X-Error-Code /
X-Error-Message headers that huggingface_hub turns into its typed errors. Every request body is read
before answering, even a 404.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".npy", ".png")
BAD_CREDENTIALS = "Invalid credentials in Authorization header"
SHA_RE = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class StoredFile:
    """One file of a commit: its bytes and whether it lives in LFS."""

    content: bytes
    lfs: bool

    @property
    def blob_id(self) -> str:
        """The git blob sha1 of the file (of the LFS pointer for LFS files)."""
        body = self.pointer if self.lfs else self.content
        return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def pointer(self) -> bytes:
        return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
                f"size {len(self.content)}\n").encode()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id


@dataclass
class Commit:
    sha: str
    parent: str | None
    message: str
    files: dict[str, StoredFile]


@dataclass
class Repo:
    """One model repo: commits by sha and refs ("refs/heads/main", "refs/tags/v1", "refs/pr/1")."""

    repo_id: str
    gated: bool = False
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    prs: int = 0

    def resolve(self, revision: str) -> str | None:
        """The commit sha a revision names (sha, branch, tag or full ref), or None."""
        if SHA_RE.fullmatch(revision) and revision in self.commits:
            return revision
        for ref in (revision, f"refs/heads/{revision}", f"refs/tags/{revision}"):
            if ref in self.refs:
                return self.refs[ref]
        return None

    def branch_ref(self, revision: str) -> str | None:
        """The ref a commit to ``revision`` moves (a branch or a PR ref), or None."""
        for ref in (revision, f"refs/heads/{revision}"):
            if ref in self.refs and ref.startswith(("refs/heads/", "refs/pr/")):
                return ref
        return None

    def add_commit(self, parent: str | None, files: dict[str, StoredFile], message: str) -> str:
        digest = hashlib.sha1(f"{parent}\n{message}\n{len(self.commits)}".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{files[path].blob_id}\n".encode())
        sha = digest.hexdigest()
        self.commits[sha] = Commit(sha, parent, message, dict(files))
        return sha


class HubState:
    """Everything the server holds: repos, LFS blobs, valid tokens, and a request log for assertions."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens  # token -> "read" or "write"
        self.repos: dict[str, Repo] = {}
        self.blobs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.refuse_commits: str | None = None  # tests set a reason to make every commit fail with HTTP 500
        self.lock = threading.RLock()

    def add_repo(self, repo_id: str, folder: Path | None = None, *, gated: bool = False,
                 files: dict[str, bytes] | None = None, message: str = "initial commit") -> str:
        """Create a repo whose main branch holds ``folder``'s files (or ``files``); return the commit sha."""
        with self.lock:
            repo = self.repos.setdefault(repo_id, Repo(repo_id, gated=gated))
            contents = dict(files or {})
            if folder is not None:
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    contents[path.relative_to(folder).as_posix()] = path.read_bytes()
            stored = {path: StoredFile(data, path.endswith(LFS_SUFFIXES)) for path, data in contents.items()}
            sha = repo.add_commit(repo.refs.get("refs/heads/main"), stored, message)
            repo.refs["refs/heads/main"] = sha
            return sha

    def commit_files(self, repo_id: str, revision: str, files: dict[str, bytes], message: str) -> str:
        """Commit ``files`` on top of a branch's head (a concurrent change, as tests need one)."""
        with self.lock:
            repo = self.repos[repo_id]
            ref = repo.branch_ref(revision)
            assert ref is not None, revision
            head = repo.commits[repo.refs[ref]]
            stored = {**head.files, **{p: StoredFile(d, p.endswith(LFS_SUFFIXES)) for p, d in files.items()}}
            repo.refs[ref] = repo.add_commit(head.sha, stored, message)
            return repo.refs[ref]

    def tag(self, repo_id: str, tag: str, sha: str) -> None:
        with self.lock:
            self.repos[repo_id].refs[f"refs/tags/{tag}"] = sha


class HubError(Exception):
    """An HTTP error answer: status, X-Error-Code and message."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _model_json(repo: Repo, sha: str) -> dict[str, Any]:
    commit = repo.commits[sha]
    return {
        "id": repo.repo_id, "modelId": repo.repo_id, "sha": sha, "private": False,
        "gated": "manual" if repo.gated else False, "disabled": False, "tags": ["diffusers"],
        "library_name": "diffusers", "lastModified": "2025-01-01T00:00:00.000Z",
        "siblings": [{"rfilename": path} for path in sorted(commit.files)],
    }


class _Handler(BaseHTTPRequestHandler):
    server: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ---------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode())

    def _dispatch(self) -> None:
        body = self._body()
        state = self.server.state
        url = urlsplit(self.path)
        with state.lock:
            state.requests.append((self.command, url.path))
        try:
            self._route(url.path, parse_qs(url.query), body)
        except HubError as error:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send(error.status, json.dumps({"error": error.message}).encode(), headers)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    # -- auth and lookup --------------------------------------------------------------------------------
    def _token_role(self) -> str | None:
        header = self.headers.get("Authorization")
        if not header:
            return None
        token = header.removeprefix("Bearer ").strip()
        role = self.server.state.tokens.get(token)
        if role is None:
            raise HubError(401, BAD_CREDENTIALS)
        return role

    def _repo(self, repo_id: str) -> Repo:
        repo = self.server.state.repos.get(repo_id)
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _readable(self, repo_id: str) -> Repo:
        role = self._token_role()
        repo = self._repo(repo_id)
        if repo.gated and role is None:
            raise HubError(401, f"Access to model {repo_id} is restricted. You must have access to it "
                                "and be authenticated to access it. Please log in.", "GatedRepo")
        return repo

    def _writable(self, repo_id: str) -> Repo:
        role = self._token_role()
        repo = self._repo(repo_id)
        if role != "write":
            raise HubError(403, "You don't have the rights to write to this repo")
        return repo

    @staticmethod
    def _sha(repo: Repo, revision: str) -> str:
        sha = repo.resolve(revision)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    # -- routes -----------------------------------------------------------------------------------------
    def _route(self, path: str, query: dict[str, list[str]], body: bytes) -> None:
        method = self.command
        parts = path.strip("/").split("/")
        # raw segments are unquoted one by one, so "refs%2Fpr%2F1" stays one segment
        parts = [unquote(part) for part in parts]
        if method == "POST" and parts == ["api", "validate-yaml"]:
            return self._json({"errors": [], "warnings": []})
        if method == "GET" and parts == ["api", "models"]:
            return self._list_models(query)
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id, rest = "/".join(parts[2:4]), parts[4:]
            if method == "GET" and not rest:
                repo = self._readable_info(repo_id)
                return self._json(_model_json(repo, self._sha(repo, "main")))
            if method == "GET" and rest[:1] == ["revision"] and len(rest) >= 2:
                repo = self._readable_info(repo_id)
                return self._json(_model_json(repo, self._sha(repo, "/".join(rest[1:]))))
            if method == "GET" and rest[:1] == ["tree"] and len(rest) >= 2:
                return self._tree(repo_id, rest[1], "/".join(rest[2:]), query)
            if method == "GET" and rest == ["refs"]:
                return self._refs(repo_id, query)
            if method == "POST" and rest[:1] == ["preupload"]:
                return self._preupload(repo_id, body)
            if method == "POST" and rest[:1] == ["commit"] and len(rest) >= 2:
                return self._commit(repo_id, "/".join(rest[1:]), query, body)
            if rest[:1] == ["branch"] and len(rest) >= 2 and method in ("POST", "DELETE"):
                return self._branch(repo_id, "/".join(rest[1:]), body)
        if method == "POST" and len(parts) == 6 and parts[1].endswith(".git") and parts[2:] == [
                "info", "lfs", "objects", "batch"]:
            return self._lfs_batch(f"{parts[0]}/{parts[1][:-4]}", body)
        if method == "PUT" and parts[:1] == ["lfs-upload"] and len(parts) == 2:
            return self._lfs_put(parts[1], body)
        if method in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
        raise HubError(404, f"no route for {method} {path}")

    def _readable_info(self, repo_id: str) -> Repo:
        self._token_role()  # a bad token is refused everywhere; gated metadata stays public, as on the Hub
        return self._repo(repo_id)

    def _list_models(self, query: dict[str, list[str]]) -> None:
        self._token_role()
        author = query.get("author", [None])[0]
        search = (query.get("search", [""])[0] or "").lower()
        state = self.server.state
        found = []
        for repo_id, repo in sorted(state.repos.items()):
            if author and repo_id.split("/")[0] != author:
                continue
            if search and search not in repo_id.lower():
                continue
            found.append({"id": repo_id, "modelId": repo_id, "sha": repo.refs["refs/heads/main"],
                          "gated": "manual" if repo.gated else False, "private": False, "tags": ["diffusers"]})
        limit = query.get("limit", [None])[0]
        self._json(found[: int(limit)] if limit else found)

    def _tree(self, repo_id: str, revision: str, prefix: str, query: dict[str, list[str]]) -> None:
        repo = self._readable(repo_id)
        commit = repo.commits[self._sha(repo, revision)]
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        base = f"{prefix.rstrip('/')}/" if prefix else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, stored in sorted(commit.files.items()):
            if not path.startswith(base):
                continue
            rest = path[len(base):].split("/")
            for depth in range(1, len(rest)):
                folder = base + "/".join(rest[:depth])
                if recursive or depth == 1:
                    entries.setdefault(folder, {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(),
                                                "size": 0, "path": folder})
            if recursive or len(rest) == 1:
                entry: dict[str, Any] = {"type": "file", "oid": stored.blob_id, "size": len(stored.content),
                                         "path": path}
                if stored.lfs:
                    entry["lfs"] = {"oid": stored.sha256, "size": len(stored.content),
                                    "pointerSize": len(stored.pointer)}
                entries[path] = entry
        if base and not entries:
            raise HubError(404, f"{prefix} does not exist", "EntryNotFound")
        self._json(list(entries.values()))

    def _refs(self, repo_id: str, query: dict[str, list[str]]) -> None:
        repo = self._readable(repo_id)
        listing: dict[str, list[dict[str, str]]] = {"branches": [], "tags": [], "converts": [], "pullRequests": []}
        for ref, sha in sorted(repo.refs.items()):
            kind = ("branches" if ref.startswith("refs/heads/") else
                    "tags" if ref.startswith("refs/tags/") else "pullRequests")
            name = ref.split("/", 2)[2] if kind != "pullRequests" else ref
            listing[kind].append({"name": name, "ref": ref, "targetCommit": sha})
        if not query.get("include_prs"):
            listing.pop("pullRequests")
        self._json(listing)

    def _preupload(self, repo_id: str, body: bytes) -> None:
        self._writable(repo_id)
        files = json.loads(body)["files"]
        self._json({"files": [
            {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
             "shouldIgnore": False} for f in files]})

    def _lfs_batch(self, repo_id: str, body: bytes) -> None:
        self._writable(repo_id)
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        objects = []
        for obj in json.loads(body)["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.server.state.blobs:
                entry["actions"] = {"upload": {"href": f"{host}/lfs-upload/{obj['oid']}"}}
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def _lfs_put(self, oid: str, body: bytes) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, "uploaded bytes do not match the announced sha256")
        with self.server.state.lock:
            self.server.state.blobs[oid] = body
        self._send(200)

    def _commit(self, repo_id: str, revision: str, query: dict[str, list[str]], body: bytes) -> None:
        repo = self._writable(repo_id)
        if self.server.state.refuse_commits:
            raise HubError(500, self.server.state.refuse_commits)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        create_pr = query.get("create_pr", ["0"])[0] in ("1", "true")
        parent_commit = header.get("parentCommit")
        state = self.server.state
        with state.lock:
            if create_pr:
                base = parent_commit or self._sha(repo, revision)
                if base not in repo.commits:
                    raise HubError(404, f"Invalid rev id: {base}", "RevisionNotFound")
            else:
                ref = repo.branch_ref(revision)
                if ref is None:
                    raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
                base = repo.refs[ref]
                if parent_commit and parent_commit != base:
                    raise HubError(412, f"A commit has happened since. Please refresh and try again. "
                                        f"({revision} is at {base}, not at parent commit {parent_commit})")
            files = dict(repo.commits[base].files)
            for line in lines:
                value = line["value"]
                if line["key"] == "file":
                    files[value["path"]] = StoredFile(base64.b64decode(value["content"]), False)
                elif line["key"] == "lfsFile":
                    if value["oid"] not in state.blobs:
                        raise HubError(422, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    files[value["path"]] = StoredFile(state.blobs[value["oid"]], True)
                elif line["key"] == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                elif line["key"] == "deletedFolder":
                    folder = value["path"].rstrip("/") + "/"
                    files = {p: f for p, f in files.items() if not p.startswith(folder)}
            sha = repo.add_commit(base, files, header.get("summary", ""))
            host = f"http://127.0.0.1:{self.server.server_address[1]}"
            answer: dict[str, Any] = {"success": True, "commitOid": sha, "commitUrl": f"{host}/{repo_id}/commit/{sha}"}
            if create_pr:
                repo.prs += 1
                repo.refs[f"refs/pr/{repo.prs}"] = sha
                answer["pullRequestUrl"] = f"{host}/{repo_id}/discussions/{repo.prs}"
            else:
                repo.refs[ref] = sha
        self._json(answer)

    def _branch(self, repo_id: str, branch: str, body: bytes) -> None:
        repo = self._writable(repo_id)
        ref = f"refs/heads/{branch}"
        with self.server.state.lock:
            if self.command == "DELETE":
                if ref not in repo.refs:
                    raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
                del repo.refs[ref]
                return self._json({})
            if ref in repo.refs:
                raise HubError(409, f"Reference already exists: {ref}")
            start = (json.loads(body) if body else {}).get("startingPoint") or "main"
            repo.refs[ref] = self._sha(repo, start)
        self._json({})

    def _resolve(self, repo_id: str, revision: str, path: str) -> None:
        repo = self._readable(repo_id)
        sha = self._sha(repo, revision)
        stored = repo.commits[sha].files.get(path)
        if stored is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        headers = {"X-Repo-Commit": sha, "ETag": f'"{stored.etag}"', "Content-Length": str(len(stored.content))}
        self._send(200, stored.content, headers, content_type="application/octet-stream")


class HubServer(ThreadingHTTPServer):
    """The server; ``endpoint`` is what HF_ENDPOINT must be set to."""

    daemon_threads = True

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = HubState(tokens or {})
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> HubServer:  # noqa: PYI034
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self.shutdown()
            self.server_close()
