"""The one door to Kaggle: credentials, the lazily built `kaggle` client, retries, and errors in plain words.

`import kaggle` signs in at import time (and, with an access token, calls Kaggle to check it), so the client is
imported only inside `client()`, after `find_credentials()` has made sure there is something to sign in with.
Secrets are read here only to be scrubbed out of any text the kit shows; they are never printed or written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from kit.errors import KitError
from kit.progress import say

T = TypeVar("T")

COMPETITION = "asl-signs"
RULES_URL = f"https://www.kaggle.com/competitions/{COMPETITION}/rules"
TOKEN_URL = "https://www.kaggle.com/settings/api"
RULES_MESSAGE = f"accept the competition rules at {RULES_URL}, then run kit fetch again"
# Waits before each retry of a 429 or 5xx answer: about half a minute in all, then a clear error.
RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
MAX_RETRY_AFTER = 60.0  # never trust a Retry-After header to park the command for longer than this


@dataclass(frozen=True)
class Credentials:
    """Where the client will find credentials; `secrets` are kept only to scrub them out of messages."""

    source: str  # e.g. "KAGGLE_API_TOKEN" or "/home/me/.kaggle/kaggle.json"
    username: str | None  # None for an access token: only Kaggle knows whose it is
    secrets: tuple[str, ...] = field(default=(), repr=False)


def _read(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text or None


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def config_dir(env: Mapping[str, str]) -> Path:
    """The folder the client reads kaggle.json from: KAGGLE_CONFIG_DIR, ~/.kaggle, else ~/.config/kaggle."""
    if env.get("KAGGLE_CONFIG_DIR"):
        return Path(env["KAGGLE_CONFIG_DIR"])
    legacy = Path.home() / ".kaggle"
    if legacy.exists() or not sys.platform.startswith("linux"):
        return legacy
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"


def _access_token(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The access token and its source, in the client's order (kagglesdk.kaggle_env.get_access_token_from_env)."""
    if env.get("KAGGLE_KERNEL_RUN_TYPE") and env.get("KAGGLE_DATA_PROXY_URL") and env.get("KAGGLE_API_V1_TOKEN"):
        token = _read(Path(env["KAGGLE_API_V1_TOKEN"]))
        if token:
            return token, "KAGGLE_API_V1_TOKEN"
    value = env.get("KAGGLE_API_TOKEN")
    if value:
        return (_read(Path(value)) if Path(value).exists() else value), "KAGGLE_API_TOKEN"
    for name in ("access_token", "access_token.txt"):
        token = _read(Path.home() / ".kaggle" / name)
        if token:
            return token, str(Path.home() / ".kaggle" / name)
    return None, None


def find_credentials(env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials the client will use, in its order: access token, API key, OAuth login; None if none.

    Reads files and environment only (no network), so `kit submit --dry-run` can use it too.
    """
    env = os.environ if env is None else env
    token, token_source = _access_token(env)
    kaggle_json = config_dir(env) / "kaggle.json"
    file_values = _json(kaggle_json)
    username = env.get("KAGGLE_USERNAME") or file_values.get("username")
    key = env.get("KAGGLE_KEY") or file_values.get("key")
    oauth = _json(Path.home() / ".kaggle" / "credentials.json")
    secrets = tuple(
        s for s in (token, key, oauth.get("refresh_token"), oauth.get("access_token")) if isinstance(s, str) and s
    )
    if token:
        return Credentials(token_source, None, secrets)
    if username and key:
        source = "KAGGLE_USERNAME/KAGGLE_KEY" if env.get("KAGGLE_KEY") else str(kaggle_json)
        return Credentials(source, username, secrets)
    if oauth.get("refresh_token"):
        return Credentials(str(Path.home() / ".kaggle" / "credentials.json"), oauth.get("username"), secrets)
    return None


def no_credentials_message() -> str:
    return (
        f"no Kaggle credentials found: create an API token at {TOKEN_URL} and save the downloaded kaggle.json "
        "as ~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_API_TOKEN"
    )


def require_credentials() -> Credentials:
    creds = find_credentials()
    if creds is None:
        raise KitError(no_credentials_message())
    return creds


def scrub(text: str, creds: Credentials | None) -> str:
    """`text` with every known secret replaced by ***: error text from the network is never trusted."""
    for secret in creds.secrets if creds else ():
        text = text.replace(secret, "***")
    return text


@contextlib.contextmanager
def client_output_to_stderr() -> Iterator[None]:
    """The client prints progress and notes with print(): keep them off stdout, which holds the kit's results."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _client_args(class_args: Sequence[str]) -> list[str]:
    # The client reads KAGGLE_API_ENVIRONMENT once, when `kaggle` is first imported; read it again now so that
    # this call's environment decides (a long-lived process, such as a test run, may point at a local server).
    args = [a for a in class_args if a != "--local"]
    return args + ["--local"] if os.environ.get("KAGGLE_API_ENVIRONMENT") == "LOCALHOST" else args


def client(creds: Credentials) -> Any:
    """A signed-in `kaggle.api.KaggleApi`, imported only now; a known failure becomes a KitError."""
    with client_output_to_stderr():
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        api.args = _client_args(KaggleApi.args)
        try:
            api.authenticate()
        except SystemExit:  # the client prints its own help and exits when nothing it found was usable
            raise KitError(
                f"Kaggle did not accept the credentials from {creds.source}: {no_credentials_message()}"
            ) from None
        except Exception as err:
            raise explain(err, "signing in to Kaggle", creds) from None
    if not api.config_values.get("username"):
        raise KitError(f"the credentials from {creds.source} name no Kaggle user: {no_credentials_message()}")
    return api


def http_status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _is_connection_error(err: BaseException) -> bool:
    import requests

    return isinstance(err, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError))


def _is_not_json(err: BaseException) -> bool:
    """A page instead of an answer: a proxy or an overloaded front end sends HTML, which the client then fails to
    read as JSON (a 200 with HTML, or an error status whose body is HTML)."""
    return isinstance(err, ValueError) and type(err).__name__ == "JSONDecodeError"


def explain(err: BaseException, doing: str, creds: Credentials | None, on_403: str | None = None) -> KitError:
    """One line saying what went wrong while `doing`, and the fix; never holds a secret."""
    status = http_status(err)
    if status == 401:
        where = creds.source if creds else "your credentials"
        text = f"Kaggle rejected the credentials from {where} (HTTP 401) while {doing}: create a new API token at "
        text += f"{TOKEN_URL} and save it as ~/.kaggle/kaggle.json, or set KAGGLE_API_TOKEN"
    elif status == 403 and on_403:
        text = on_403
    elif status is not None:
        text = f"Kaggle answered HTTP {status} while {doing}: {err}"
    elif _is_connection_error(err):
        text = f"cannot reach Kaggle while {doing} ({type(err).__name__}): check the network and run it again"
    elif _is_not_json(err):
        text = f"Kaggle answered with a web page instead of data while {doing}: it is overloaded; run it again later"
    else:
        text = f"{doing} failed: {type(err).__name__}: {err}"
    return KitError(scrub(text, creds))


def _transient(err: BaseException) -> bool:
    status = http_status(err)
    if status is not None:
        return status == 429 or status >= 500
    return _is_connection_error(err) or _is_not_json(err)


def _retry_after(err: BaseException) -> float | None:
    response = getattr(err, "response", None)
    try:
        return min(float(response.headers["Retry-After"]), MAX_RETRY_AFTER)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def call(
    fn: Callable[[], T],
    doing: str,
    creds: Credentials | None,
    *,
    on_403: str | None = None,
    delays: Sequence[float] | None = None,
) -> T:
    """Run one client call; 429, 5xx and dropped connections are retried after each of `delays`.

    Anything else, or a transient failure that outlasts the retries, becomes a one-line KitError.
    """
    delays = RETRY_DELAYS if delays is None else delays
    for attempt in range(len(delays) + 1):
        try:
            with client_output_to_stderr():
                return fn()
        except KitError:
            raise
        except Exception as err:
            if not _transient(err):
                raise explain(err, doing, creds, on_403) from None
            if attempt == len(delays):
                what = f"HTTP {http_status(err)}" if http_status(err) else "a web page, not data" if \
                    _is_not_json(err) else type(err).__name__
                raise KitError(
                    scrub(f"Kaggle kept failing ({what}) while {doing}, {attempt + 1} tries: nothing done so far is "
                          "lost; run the same command again later and it continues where it stopped", creds)
                ) from None
            wait = _retry_after(err) if http_status(err) == 429 else None
            wait = delays[attempt] if wait is None else wait
            what = http_status(err) or ("a web page, not data" if _is_not_json(err) else type(err).__name__)
            say(scrub(f"Kaggle: {what} while {doing}; retry in {wait:g} s", creds))
            time.sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


def error_text(err: BaseException) -> str:
    """What Kaggle said in a refusal: the JSON message of an HTTP error, else the exception's text."""
    response = getattr(err, "response", None)
    try:
        return str(response.json().get("message") or err)
    except (AttributeError, ValueError):
        return str(err)


def log_url(kernel_url: str) -> str:
    parts = urlsplit(kernel_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/log"))


def log_tail(log: str, n: int = 3) -> list[str]:
    """The telling end of a kernel log (Kaggle's JSON list of {stream_name, time, data}, or plain text): its last
    error lines if it has any (warnings would crowd them out), else its last lines."""
    try:
        text = "".join(entry.get("data", "") for entry in json.loads(log))
    except (ValueError, TypeError, AttributeError):
        text = log
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"ERROR|\w*Error\b", line)]
    return (errors or lines)[-n:]


def session_status(api: Any, ref: str, version: int) -> Any:
    """Status of one kernel version's session. The 2.2.4 client asks for the newest session only; the request
    has a version label ("v3"; a bare number is not found) that pins the one that was pushed."""
    from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelSessionStatusRequest

    owner, slug = ref.split("/")
    request = ApiGetKernelSessionStatusRequest()
    request.user_name, request.kernel_slug, request.version_label = owner, slug, f"v{version}"
    with api.build_kaggle_client() as kaggle:
        return kaggle.kernels.kernels_api_client.get_kernel_session_status(request)


def session_output(api: Any, ref: str, version: int) -> tuple[list[tuple[str, str]], str]:
    """(file name, URL) of every output file of one kernel version, and its log; every page of the listing."""
    from kagglesdk.kernels.types.kernels_api_service import ApiListKernelSessionOutputRequest

    owner, slug = ref.split("/")
    files, log, token = [], "", None
    with api.build_kaggle_client() as kaggle:
        while True:
            request = ApiListKernelSessionOutputRequest()
            request.user_name, request.kernel_slug, request.version_label = owner, slug, f"v{version}"
            request.page_size = 100
            if token:
                request.page_token = token
            response = kaggle.kernels.kernels_api_client.list_kernel_session_output(request)
            files += [(f.file_name, f.url) for f in response.files or []]
            log = log or response.log or ""
            token = response.next_page_token
            if not token:
                return files, log


def newest_version(api: Any, ref: str, creds: Credentials | None) -> int | None:
    """The number of a kernel's newest version; None when the kernel does not exist."""
    from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

    def newest() -> int | None:
        request = ApiGetKernelRequest()
        request.user_name, request.kernel_slug = ref.split("/")
        with api.build_kaggle_client() as kaggle:
            return kaggle.kernels.kernels_api_client.get_kernel(request).metadata.current_version_number

    return call(unless_missing(newest), f"looking up the kernel {ref}", creds)


def delete_kernel(api: Any, ref: str) -> None:
    """Deleting a kernel is what stops its running session (the API has no cancel for a pushed version)."""
    api.kernels_delete(ref, no_confirm=True)


def quota(api: Any) -> dict[str, tuple[float, float]]:
    """{"gpu": (hours used, hours allowed), "tpu": ...} for this week, from quota_view()."""
    answer = api.quota_view()
    out = {}
    for name in ("gpu", "tpu"):
        q = getattr(answer, f"{name}_quota", None)
        if q is not None and q.total_time_allowed is not None:
            used = q.time_used.total_seconds() / 3600 if q.time_used is not None else 0.0
            out[name] = (used, q.total_time_allowed.total_seconds() / 3600)
    return out


def unless_missing(fn: Callable[[], T]) -> Callable[[], T | None]:
    """`fn` for `call`, answering None where Kaggle answers 404: no such dataset or kernel (yet)."""
    def attempt() -> T | None:
        try:
            return fn()
        except Exception as err:
            if http_status(err) == 404:
                return None
            raise

    return attempt


def dataset_status(api: Any, ref: str, creds: Credentials | None) -> str | None:
    """"ready", "pending", "failed"... for one of the user's datasets; None when it does not exist."""
    return call(unless_missing(lambda: api.dataset_status(ref)), f"looking up the dataset {ref}", creds)


def dataset_files(api: Any, ref: str, creds: Credentials | None) -> list[str]:
    """The file names of the current version of one of the user's datasets; none when it does not exist."""
    result = call(unless_missing(lambda: api.dataset_list_files(ref)), f"listing the files of {ref}", creds)
    return [f.name for f in (result.dataset_files or [])] if result is not None else []


def dataset_exists(api: Any, ref: str, creds: Credentials | None) -> bool:
    return dataset_status(api, ref, creds) is not None


def upload_dataset(api: Any, creds: Credentials | None, folder: str, ref: str, exists: bool, note: str) -> None:
    """The folder (dataset-metadata.json and its files) as a new version of `ref`, or as a new private dataset."""
    def upload() -> Any:
        if exists:
            return api.dataset_create_version(folder, version_notes=note, quiet=True, dir_mode="skip")
        return api.dataset_create_new(folder, public=False, quiet=True, dir_mode="skip")

    result = call(upload, f"uploading {folder} to {ref}", creds)
    if result.error or (result.status or "ok").lower() != "ok":
        raise KitError(f"Kaggle did not take the dataset {ref}: {result.error or result.status}")
