"""HTTP plumbing shared by every connector: client (retries, errors, TLS), paginators."""

from okrsync.http.client import (
    HttpClient,
    HttpSettings,
    HttpStats,
    RateLimiter,
    TokenAuth,
    default_error_parser,
    parse_retry_after,
    request_id_of,
)
from okrsync.http.paging import (
    next_link_pages,
    odata_v2_pages,
    offset_limit_pages,
    start_index_pages,
    with_query,
)

__all__ = [
    "HttpClient",
    "HttpSettings",
    "HttpStats",
    "RateLimiter",
    "TokenAuth",
    "default_error_parser",
    "next_link_pages",
    "odata_v2_pages",
    "offset_limit_pages",
    "parse_retry_after",
    "request_id_of",
    "start_index_pages",
    "with_query",
]
