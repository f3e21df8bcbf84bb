"""Login: OAuth 2.0 token endpoint and the SOAP partner `login` call simple-salesforce uses.

`POST /services/oauth2/token` (form-encoded):
  grant_type=password            client_id, client_secret, username, password (+ security token or not)
  grant_type=client_credentials  client id/secret in `Authorization: Basic` (or the form)
  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer   assertion whose `iss` is the client id and
                                 `sub` the username (the signature is not verified: no certificate is
                                 configured in the sandbox)
  grant_type=refresh_token       a token in `LoginApi.refresh_tokens` (none of the flows above issue one,
                                 as in Salesforce; tests add one to stand for an authorization-code grant)
Success: `access_token`, `instance_url` (the emulator's own URL), `id`, `token_type`, `issued_at`,
`signature`. Failures: 400 `{"error": "invalid_grant", "error_description": "authentication failure"}`,
`invalid_client_id`, `invalid_client`, `unsupported_grant_type`.

`POST /services/Soap/u/{version}`: a SOAP `login` envelope with username and password+security token
(or the password alone with a LoginScopeHeader naming the org); answers `sessionId` and a `serverUrl` on
the emulator's host, or a SOAP fault `INVALID_LOGIN` with HTTP 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import orjson
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from sandbox.salesforce.emulator import SalesforceEmulator

_SOAP_FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\
<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring>\
<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>\
<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body>\
</soapenv:Envelope>"""

_SOAP_LOGIN = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>\
<metadataServerUrl>{base}/services/Soap/m/{version}/{org}</metadataServerUrl>\
<passwordExpired>false</passwordExpired><sandbox>true</sandbox>\
<serverUrl>{base}/services/Soap/u/{version}/{org}</serverUrl>\
<sessionId>{session}</sessionId><userId>{user}</userId><userInfo>\
<accessibilityMode>false</accessibilityMode><currencySymbol>$</currencySymbol><orgAttachmentFileSizeLimit>5242880\
</orgAttachmentFileSizeLimit><orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>\
<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments><orgHasPersonAccounts>false</orgHasPersonAccounts>\
<organizationId>{org}</organizationId><organizationMultiCurrency>false</organizationMultiCurrency>\
<organizationName>Journey Hub Sandbox</organizationName><profileId>{profile}</profileId><roleId xsi:nil="true"/>\
<sessionSecondsValid>7200</sessionSecondsValid><userDefaultCurrencyIsoCode xsi:nil="true"/>\
<userEmail>{email}</userEmail><userFullName>Journey Hub Integration</userFullName><userId>{user}</userId>\
<userLanguage>en_US</userLanguage><userLocale>en_US</userLocale><userName>{username}</userName>\
<userTimeZone>GMT</userTimeZone><userType>Standard</userType><userUiSkin>Theme3</userUiSkin></userInfo>\
</result></loginResponse></soapenv:Body></soapenv:Envelope>"""


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return Response(orjson.dumps({"error": error, "error_description": description}), status_code=status,
                    media_type="application/json;charset=UTF-8")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class LoginApi:
    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.emulator = emulator
        self.refresh_tokens: set[str] = set()

    def register(self) -> None:
        emulator = self.emulator
        emulator.route("/services/oauth2/token", self.token, ["POST"], auth=False, faults=False,
                       name="POST /services/oauth2/token")
        emulator.route("/services/Soap/u/{version}", self.soap_login, ["POST"], auth=False, faults=False,
                       name="POST /services/Soap/u/{version}")

    # ------------------------------------------------------------------------------------------ checks
    def _password_ok(self, password: str | None, *, token_optional: bool = False) -> bool:
        credentials = self.emulator.credentials
        if password is None:
            return False
        expected = credentials.password + credentials.security_token
        return hmac.compare_digest(password, expected) or (
            (token_optional or not credentials.security_token) and hmac.compare_digest(password, credentials.password))

    def _user_ok(self, username: str | None) -> bool:
        return (username or "").strip().lower() == self.emulator.credentials.username.lower()

    def _client(self, request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, None
            return client_id, secret
        return form.get("client_id"), form.get("client_secret")

    def _token_body(self) -> dict[str, str]:
        emulator = self.emulator
        token = emulator.issue_token(prefix=f"{emulator.org_id[:15]}!AQ")
        issued = str(int(time.time() * 1000))
        identity = f"{emulator.base_url}/id/{emulator.org_id}/{emulator.store.user_id}"
        signature = base64.b64encode(hmac.new(emulator.credentials.client_secret.encode(),
                                              (identity + issued).encode(), hashlib.sha256).digest()).decode()
        return {"access_token": token, "instance_url": emulator.base_url, "id": identity, "token_type": "Bearer",
                "issued_at": issued, "signature": signature, "scope": "api"}

    # ------------------------------------------------------------------------------------------ endpoints
    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        credentials = self.emulator.credentials
        grant = form.get("grant_type")
        client_id, secret = self._client(request, form)
        if grant == "password":
            if client_id != credentials.client_id:
                return _oauth_error("invalid_client_id", "client identifier invalid")
            if secret != credentials.client_secret:
                return _oauth_error("invalid_client", "invalid client credentials")
            if not self._user_ok(form.get("username")) or not self._password_ok(form.get("password")):
                return _oauth_error("invalid_grant", "authentication failure")
        elif grant == "client_credentials":
            if client_id != credentials.client_id or secret != credentials.client_secret:
                return _oauth_error("invalid_client", "invalid client credentials")
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            claims = _jwt_claims(form.get("assertion", ""))
            if claims is None or claims.get("iss") != credentials.client_id:
                return _oauth_error("invalid_client_id", "client identifier invalid")
            if not self._user_ok(claims.get("sub")) or float(claims.get("exp", 0) or 0) < time.time():
                return _oauth_error("invalid_grant", "user hasn't approved this consumer")
        elif grant == "refresh_token":
            if client_id != credentials.client_id:
                return _oauth_error("invalid_client_id", "client identifier invalid")
            if form.get("refresh_token") not in self.refresh_tokens:
                return _oauth_error("invalid_grant", "expired access/refresh token")
        else:
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        return Response(orjson.dumps(self._token_body()), media_type="application/json;charset=UTF-8")

    async def soap_login(self, request: Request) -> Response:
        emulator = self.emulator
        try:
            root = ET.fromstring(await request.body())
        except ET.ParseError:
            return self._fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
        values = {_local(element.tag): (element.text or "") for element in root.iter()}
        scoped = values.get("organizationId", "")[:15] == emulator.org_id[:15]
        if not self._user_ok(values.get("username")) or not self._password_ok(values.get("password"),
                                                                              token_optional=scoped):
            return self._fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
        session = emulator.issue_token(prefix=f"{emulator.org_id[:15]}!AQ")
        user = emulator.store.tables["User"].get(emulator.store.user_id) or {}
        version = request.path_params.get("version") or emulator.api_version_default
        body = _SOAP_LOGIN.format(
            base=escape(emulator.base_url), version=escape(version),
            org=emulator.org_id, session=escape(session), user=emulator.store.user_id,
            profile=user.get("ProfileId") or "", email=escape(user.get("Email") or ""),
            username=escape(emulator.credentials.username))
        return Response(body, media_type="text/xml; charset=utf-8")

    @staticmethod
    def _fault(code: str, message: str) -> Response:
        return Response(_SOAP_FAULT.format(code=code, message=escape(message)), status_code=500,
                        media_type="text/xml; charset=utf-8")


def _jwt_claims(assertion: str) -> dict | None:
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None
