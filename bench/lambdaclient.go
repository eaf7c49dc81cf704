package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gustfaas/gust/client"
)

// lambdaClient speaks the Lambda REST API subset that gust's HTTP front and
// aws-lambda-rie share. gust and RIE are driven through the same code and
// the same keep-alive *http.Client, so neither gets a faster client.
type lambdaClient struct {
	hc   *http.Client
	base string // http://host:port
}

// newHTTPClient is the one HTTP client of a run: keep-alive, no proxy, no
// compression, enough idle connections for every concurrent client.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// httpError is a non-2xx answer, with the restJson1 error name if any.
type httpError struct {
	Status  int
	Name    string
	Message string
}

func (e *httpError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Name, e.Message)
}

// functionError is an invocation whose function failed.
type functionError struct {
	Kind    string // X-Amz-Function-Error: Handled or Unhandled
	Payload string
}

func (e *functionError) Error() string { return "function error (" + e.Kind + "): " + e.Payload }

// errorKind names an error for the per-kind counts of a measurement.
func errorKind(err error) string {
	var he *httpError
	var fe *functionError
	var ae *client.Error
	var ne net.Error
	switch {
	case errors.Is(err, errClientOverload):
		return "client overload"
	case errors.As(err, &he) && he.Name != "":
		return he.Name
	case errors.As(err, &he):
		return fmt.Sprintf("HTTP %d", he.Status)
	case errors.As(err, &fe):
		var body struct{ ErrorType string }
		if json.Unmarshal([]byte(fe.Payload), &body) == nil && body.ErrorType != "" {
			return "function " + body.ErrorType
		}
		return "function " + fe.Kind
	case errors.As(err, &ae):
		return ae.Name
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			return "transport"
		}
		return "error"
	}
}

// do sends one request and reads the whole answer; a status other than
// want is an *httpError.
func (c *lambdaClient) do(ctx context.Context, method, path string, body []byte, want int) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, nil, err
	}
	if resp.StatusCode != want {
		e := &httpError{Status: resp.StatusCode, Name: resp.Header.Get("X-Amzn-ErrorType"), Message: strings.TrimSpace(string(b))}
		var restErr struct {
			Message      string `json:"message"`
			MessageUpper string `json:"Message"`
		}
		if json.Unmarshal(b, &restErr) == nil && restErr.Message+restErr.MessageUpper != "" {
			e.Message = restErr.Message + restErr.MessageUpper
		}
		// restJson1 allows "Name:extra" in the header.
		e.Name, _, _ = strings.Cut(e.Name, ":")
		return resp, b, e
	}
	return resp, b, nil
}

// Invoke runs one RequestResponse invocation and returns the function's
// answer; a function error is a *functionError.
func (c *lambdaClient) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	resp, b, err := c.do(ctx, http.MethodPost, "/2015-03-31/functions/"+url.PathEscape(function)+"/invocations", payload, http.StatusOK)
	if err != nil {
		return nil, err
	}
	if fe := resp.Header.Get("X-Amz-Function-Error"); fe != "" {
		return nil, &functionError{Kind: fe, Payload: string(b)}
	}
	// aws-lambda-rie reports a failed function as a 200 without the header.
	if bytes.HasPrefix(b, []byte(`{"errorMessage"`)) || bytes.HasPrefix(b, []byte(`{"errorType"`)) {
		return nil, &functionError{Kind: "Unhandled", Payload: string(b)}
	}
	return b, nil
}

// createBody is a CreateFunction request body for one function name with
// the code already base64-encoded, so building it per sample costs a copy,
// not an encoding of megabytes.
type createBody struct {
	zip64 string
}

func newCreateBody(zip []byte) createBody {
	return createBody{zip64: base64.StdEncoding.EncodeToString(zip)}
}

func (b createBody) For(name string) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b.zip64) + 256)
	buf.WriteString(`{"FunctionName":`)
	n, _ := json.Marshal(name)
	buf.Write(n)
	buf.WriteString(`,"Runtime":"provided.al2","Handler":"bootstrap","Role":"arn:aws:iam::000000000000:role/gust-bench","Code":{"ZipFile":"`)
	buf.WriteString(b.zip64)
	buf.WriteString(`"}}`)
	return buf.Bytes()
}

// CreateFunction creates a function from a prepared body (201 Created).
func (c *lambdaClient) CreateFunction(ctx context.Context, body []byte) error {
	_, _, err := c.do(ctx, http.MethodPost, "/2015-03-31/functions", body, http.StatusCreated)
	return err
}

// DeleteFunction deletes a function (204 No Content).
func (c *lambdaClient) DeleteFunction(ctx context.Context, name string) error {
	_, _, err := c.do(ctx, http.MethodDelete, "/2015-03-31/functions/"+url.PathEscape(name), nil, http.StatusNoContent)
	return err
}

// coldFromPayload reads examples/hello's answer: "invocations" counts the
// calls its process has served, so 1 is a cold start. Other bootstraps do
// not say.
func coldFromPayload(b []byte) Cold {
	var v struct {
		Invocations *int `json:"invocations"`
	}
	if json.Unmarshal(b, &v) != nil || v.Invocations == nil {
		return ColdUnknown
	}
	if *v.Invocations == 1 {
		return ColdYes
	}
	return ColdNo
}
