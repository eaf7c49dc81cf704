package lambdahttp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gustfaas/gust/internal/requestid"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// functionURLPrefix starts every function URL: ANY /fn/{name}[/path…].
const functionURLPrefix = "/fn/"

// functionURLTime is the layout of requestContext.time, as Lambda writes it
// ("12/Mar/2020:19:03:58 +0000").
const functionURLTime = "02/Jan/2006:15:04:05 -0700"

// functionURLEvent is the function URL event, payload format 2.0. It is
// aws-lambda-go's LambdaFunctionURLRequest plus the members Lambda sends
// that the type does not have (routeKey, requestContext.routeKey and
// stage); requestContext shadows the embedded one, so there is one.
type functionURLEvent struct {
	events.LambdaFunctionURLRequest
	RouteKey       string                    `json:"routeKey"`
	RequestContext functionURLRequestContext `json:"requestContext"`
}

type functionURLRequestContext struct {
	events.LambdaFunctionURLRequestContext
	RouteKey string `json:"routeKey"`
	Stage    string `json:"stage"`
}

// badGatewayBody is what Lambda's function URLs answer when the function
// failed or its answer could not be mapped to HTTP.
var badGatewayBody = []byte(`{"Message":"Internal Server Error"}`)

// functionURL serves ANY /fn/{name}[/path…]: the request becomes the
// function URL event, the function's answer becomes the response. The
// path after the function's name is the function's own (rawPath "/" for
// none), so it is passed on as sent, whatever it holds.
func (h *handler) functionURL(w http.ResponseWriter, r *http.Request) {
	in := invocation{requestID: requestid.New(), op: "FunctionURL"}
	name, rawPath, ok := splitFunctionURL(r.URL)
	if !ok {
		h.unknownOperation(w, r)
		return
	}
	in.name = name
	body, err := readBody(r, h.opts.MaxFunctionURLBody)
	if err != nil {
		h.writeError(w, r, in, err)
		return
	}
	payload, err := json.Marshal(functionURLRequest(r, rawPath, in.requestID, body))
	if err != nil { // strings, maps and numbers only: cannot happen
		h.writeError(w, r, in, err)
		return
	}
	resp, err := h.inv.Invoke(r.Context(), &gustv1.InvokeRequest{Function: name, Payload: payload})
	if err != nil {
		h.writeError(w, r, in, err)
		return
	}
	requestID := orDefault(resp.GetRequestId(), in.requestID)
	if resp.GetFunctionError() != "" {
		writeBadGateway(w, requestID)
		return
	}
	status, hdr, out, ok := functionURLResponse(resp.GetPayload())
	if !ok {
		h.log.Warn("function URL answer is not a valid response", "request_id", requestID, "function", name)
		writeBadGateway(w, requestID)
		return
	}
	for k, vs := range hdr {
		w.Header()[k] = vs
	}
	w.Header().Set(hdrRequestID, requestID)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	w.Write(out)
}

// splitFunctionURL splits /fn/{name}[/rest] into the function's name and
// the path the function sees ("/" + rest, still escaped as sent).
func splitFunctionURL(u *url.URL) (name, rawPath string, ok bool) {
	esc := u.EscapedPath()
	// EscapedPath keeps the client's escaping, so "fn" may be spelled
	// %66n: skip the first segment by position, not by its text.
	_, rest, _ := strings.Cut(strings.TrimPrefix(esc, "/"), "/")
	nameEsc, sub, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(nameEsc)
	if err != nil || name == "" {
		return "", "", false
	}
	return name, "/" + sub, true
}

// functionURLRequest builds the event for r, as Lambda's function URLs do.
func functionURLRequest(r *http.Request, rawPath, requestID string, body []byte) functionURLEvent {
	now := time.Now().UTC()
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	// On Lambda domainPrefix and apiId are the URL id, the first label of
	// the domain; here the domain is whatever the client called us by.
	prefix, _, _ := strings.Cut(host, ".")
	sourceIP := r.RemoteAddr
	if h, _, err := net.SplitHostPort(sourceIP); err == nil {
		sourceIP = h
	}

	ev := functionURLEvent{RouteKey: "$default"}
	ev.Version = "2.0"
	ev.RawPath = rawPath
	ev.RawQueryString = escapeQuery(r.URL.RawQuery)
	ev.Headers, ev.Cookies = eventHeaders(r, sourceIP)
	ev.QueryStringParameters = eventQuery(r.URL.RawQuery)
	ev.RequestContext = functionURLRequestContext{
		LambdaFunctionURLRequestContext: events.LambdaFunctionURLRequestContext{
			AccountID:    "anonymous",
			RequestID:    requestID,
			APIID:        prefix,
			DomainName:   host,
			DomainPrefix: prefix,
			Time:         now.Format(functionURLTime),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      rawPath,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
		RouteKey: "$default",
		Stage:    "$default",
	}
	if len(body) > 0 {
		if utf8.Valid(body) && isTextual(r.Header.Get("Content-Type")) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// eventHeaders lower-cases header names and joins repeated headers with
// ",", as Lambda does; Cookie headers become the cookies list instead.
// Host, which net/http takes out of the header map, is put back, and the
// X-Forwarded-For/-Proto a front end adds are added when none came.
func eventHeaders(r *http.Request, sourceIP string) (map[string]string, []string) {
	hdr := make(map[string]string, len(r.Header)+3)
	var cookies []string
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if k == "cookie" {
			for _, v := range vs {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		// Canonicalised keys are distinct, but two non-canonical spellings
		// of one name (a handler-built request) would collide: join them.
		v := strings.Join(vs, ",")
		if prev, ok := hdr[k]; ok {
			v = prev + "," + v
		}
		hdr[k] = v
	}
	if r.Host != "" {
		hdr["host"] = r.Host
	}
	if _, ok := hdr["x-forwarded-for"]; !ok && sourceIP != "" {
		hdr["x-forwarded-for"] = sourceIP
	}
	if _, ok := hdr["x-forwarded-proto"]; !ok {
		hdr["x-forwarded-proto"] = "http"
		if r.TLS != nil {
			hdr["x-forwarded-proto"] = "https"
		}
	}
	return hdr, cookies
}

// escapeQuery percent-encodes the bytes of a raw query that are not
// printable ASCII. net/http lets them through, but the event is JSON, which
// cannot carry invalid UTF-8 (it would become U+FFFD): encoded, the query
// means the same and reaches the function intact.
func escapeQuery(raw string) string {
	printable := func(c byte) bool { return c > ' ' && c < 0x7f }
	i := 0
	for i < len(raw) && printable(raw[i]) {
		i++
	}
	if i == len(raw) {
		return raw
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(raw) + 16)
	b.WriteString(raw[:i])
	for ; i < len(raw); i++ {
		if c := raw[i]; printable(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// eventQuery is queryStringParameters: repeated parameters joined with
// ",". A malformed pair is left out (rawQueryString still has it).
func eventQuery(raw string) map[string]string {
	if raw == "" {
		return nil
	}
	q, _ := url.ParseQuery(raw)
	if len(q) == 0 {
		return nil
	}
	out := make(map[string]string, len(q))
	for k, vs := range q {
		out[k] = strings.Join(vs, ",")
	}
	return out
}

// isTextual says whether a body of this Content-Type goes into the event
// as text; anything else (or no Content-Type) is base64-encoded, so binary
// bodies reach the function intact.
func isTextual(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "text/") ||
		strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") || strings.HasSuffix(mt, "+yaml") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/ecmascript",
		"application/x-javascript", "application/x-www-form-urlencoded", "application/yaml",
		"application/x-yaml", "application/graphql", "application/x-ndjson":
		return true
	}
	return false
}

// functionURLResponse maps the function's answer to HTTP. A JSON object
// with a "statusCode" member is a response object (events.
// LambdaFunctionURLResponse); any other JSON value is a 200 with that JSON
// as its body. ok is false when the answer is neither (not JSON, a bad
// status or base64 body): the caller answers 502, as Lambda does.
func functionURLResponse(payload []byte) (status int, hdr http.Header, body []byte, ok bool) {
	payload = bytes.TrimSpace(payload)
	if !json.Valid(payload) {
		return 0, nil, nil, false
	}
	hdr = http.Header{}
	var members map[string]json.RawMessage
	if payload[0] != '{' || json.Unmarshal(payload, &members) != nil || members["statusCode"] == nil {
		hdr.Set("Content-Type", "application/json")
		return http.StatusOK, hdr, payload, true
	}
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal(payload, &resp); err != nil {
		return 0, nil, nil, false
	}
	if resp.StatusCode < 200 || resp.StatusCode > 599 {
		// 1xx would be sent as an interim response followed by a 200.
		return 0, nil, nil, false
	}
	body = []byte(resp.Body)
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			return 0, nil, nil, false
		}
		body = b
	}
	for k, v := range resp.Headers {
		if !validHeaderName(k) || !validHeaderValue(v) || hopByHop[strings.ToLower(k)] {
			continue
		}
		hdr.Set(k, v)
	}
	for _, c := range resp.Cookies {
		if validHeaderValue(c) && c != "" {
			hdr.Add("Set-Cookie", c)
		}
	}
	if hdr.Get("Content-Type") == "" {
		// As Lambda does, and so that net/http does not sniff one.
		hdr.Set("Content-Type", "application/json")
	}
	return resp.StatusCode, hdr, body, true
}

// hopByHop are headers a function may not set: they describe the
// connection or the framing, which are the server's.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true,
	"te": true, "trailer": true, "upgrade": true, "content-length": true,
}

// validHeaderName is RFC 9110's token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters other than tab (CR and LF
// would split the header).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func writeBadGateway(w http.ResponseWriter, requestID string) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set(hdrRequestID, requestID)
	hdr.Set("Content-Length", strconv.Itoa(len(badGatewayBody)))
	w.WriteHeader(http.StatusBadGateway)
	w.Write(badGatewayBody)
}
