"""Salesforce sandbox emulator: REST API, SOAP login and OAuth, over HTTPS, for simple-salesforce unpatched.

What it serves (all under ``https://127.0.0.1:PORT``, TLS from the sandbox CA):

- Logins: SOAP ``POST /services/Soap/u/{v}`` (username + password+security token; bad ones give
  the SOAP fault ``INVALID_LOGIN``), ``POST /services/oauth2/token`` with the JWT bearer grant
  (RS256, signed by the key in ``private_key_path``; ``iss`` = consumer key, ``sub`` = username),
  ``client_credentials`` (My Domain only, as in Salesforce) and ``password`` (the password field
  must carry password + security token, as from an untrusted IP range). Sessions come from a
  :class:`~okrsync.sandbox.server.TokenStore`; ``token_ttl`` faults expire them and REST calls
  then answer 401 ``INVALID_SESSION_ID``.
- REST ``/services/data/v{v}/``: ``query``/``queryAll`` with ``nextRecordsUrl`` cursors
  (2000 a page, ``Sforce-Query-Options: batchSize=N`` 200..2000), a SOQL subset
  (:mod:`.soql`), sObject GET/PATCH/POST, upsert by external id (201/200/300), ``describe``,
  sObject Collections (GET by ids, PATCH update, POST create, PATCH upsert by external id;
  ≤200 records, ``allOrNone``), ``limits``; the versions list at ``/services/data/``.
- Every ``/services/data`` answer carries ``Sforce-Limit-Info: api-usage=N/LIMIT``; past
  ``daily_limit`` → 403 ``REQUEST_LIMIT_EXCEEDED``. URIs longer than 16,384 bytes → 414, as
  Salesforce documents (chunk long ``IN`` lists); SOQL over 100,000 characters → MALFORMED_QUERY.
  Injected ``429`` faults become Salesforce's concurrency refusal, 403 ``REQUEST_LIMIT_EXCEEDED``
  "ConcurrentPerOrgLongTxn Limit exceeded." (no Retry-After): the REST API has no 429.
  *(unverified: the 414 body, which is a JSON error array here, and the exact messages of
  FIELD_INTEGRITY_EXCEPTION for manager loops; error codes are the documented ones.)*

Data: one User per org worker (``org.salesforce_user_id(i)``; ``EmployeeNumber`` =
``FederationIdentifier`` = the employee id; ``ManagerId`` may dangle on purpose; ``IsActive``
false for terminated, pre-hire and deleted workers, since Users are never deleted), plus
``opportunities_per_rep`` generated Opportunities per Sales-department user, closing in the
previous and current quarters of ``org.as_of``; ``Profile``, ``UserRole``, ``Organization``.
The integration user itself is not one of the Users. Relative date literals resolve against
``org.as_of`` in GMT; timestamps are whole seconds.

Pointing simple-salesforce (unpatched) at the emulator — ``conn = emulator.connection()``:

- Session: ``s = requests.Session(); s.verify = conn["ca_bundle"]; s.trust_env = False``.
  ``trust_env = False`` matters: with it on, ``REQUESTS_CA_BUNDLE`` silently replaces
  ``Session.verify`` (api-notes §7). A connector that needs proxies from the environment
  passes ``verify=`` per request instead.
- Logins through simple-salesforce: ``domain=conn["domain"]`` (``"127.0.0.1:PORT/sandbox.my"``).
  simple-salesforce builds ``https://{domain}.salesforce.com/services/...``, which becomes
  ``https://127.0.0.1:PORT/sandbox.my.salesforce.com/services/...``; the emulator serves its login
  endpoints under any ``/<host>.salesforce.com`` path prefix, as if it were that login host. So
  ``Salesforce(username=, password=, security_token=, domain=, session=)`` (SOAP),
  ``Salesforce(username=, consumer_key=, privatekey_file=conn["private_key_path"], domain=, session=)``
  (JWT; ``aud`` becomes ``https://127.0.0.1:PORT/sandbox.my.salesforce.com``, which the emulator
  accepts as its own login host; do not also pass ``instance_url``, which simple-salesforce would
  turn into ``https://{instance_url}.salesforce.com`` for the token call) and
  ``Salesforce(consumer_key=, consumer_secret=, domain=, session=)`` (client credentials) all work.
  The answers' ``instance_url``/``serverUrl`` point back at ``https://127.0.0.1:PORT``, so later
  calls need nothing special.
- A connector that does its own OAuth (recommended: one explicit ``login_url``, no string games)
  posts to ``{conn["login_url"]}/services/oauth2/token`` and then builds
  ``Salesforce(instance_url=answer["instance_url"], session_id=answer["access_token"], session=s)``;
  ``SalesforceLogin(..., scratch_url=conn["login_url"])`` also reaches the SOAP login directly.

Modules: :mod:`.emulator` (routes, auth, accounting, cursors), :mod:`.records` (sObject and
Collections handlers), :mod:`.soql` (parser), :mod:`.query` (evaluator), :mod:`.data` (tables,
generation, write rules), :mod:`.schema` (fields), :mod:`.dates` (relative date literals),
:mod:`.auth` (SOAP/OAuth). Test helpers on the emulator: ``opportunities``, ``users``, ``user(id)``,
``won_amount(owner_ids, quarter=0)`` (closed-won Amount summed straight from the rows) and
``sales_rep_ids()``.
"""

from __future__ import annotations

from okrsync.sandbox.salesforce.emulator import SalesforceEmulator

__all__ = ["SalesforceEmulator"]
