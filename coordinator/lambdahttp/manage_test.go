package lambdahttp

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const fnsPath = "/2015-03-31/functions"

// jsonSubset reports whether every member of want is in got with the same
// value (objects and arrays of the same length compared recursively,
// everything else exactly).
func jsonSubset(got, want any) bool {
	if wa, ok := want.([]any); ok {
		ga, ok := got.([]any)
		if !ok || len(ga) != len(wa) {
			return false
		}
		for i := range wa {
			if !jsonSubset(ga[i], wa[i]) {
				return false
			}
		}
		return true
	}
	wm, ok := want.(map[string]any)
	if !ok {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		return string(gb) == string(wb)
	}
	gm, ok := got.(map[string]any)
	if !ok {
		return false
	}
	for k, wv := range wm {
		gv, ok := gm[k]
		if !ok || !jsonSubset(gv, wv) {
			return false
		}
	}
	return true
}

func TestManagementHTTP(t *testing.T) {
	zipB64 := b64("zip")
	tests := []struct {
		name   string
		method string
		target string
		body   string
		// setup prepares the seeded fake ("fn" with version 1 and alias
		// live); wrap turns it into the handler's Invoker.
		setup func(*fakeManager)
		wrap  func(*fakeManager) Invoker
		opts  Options

		wantStatus int
		wantHdr    map[string]string // "" means absent
		wantJSON   string            // a subset the body must hold
		wantAbsent []string          // top-level members that must not be there
		wantErr    string
		wantMsg    string
		check      func(*testing.T, *fakeManager)
	}{
		{
			name: "CreateFunction", method: "POST", target: fnsPath,
			body: `{"FunctionName":"new","Runtime":"provided","Handler":"h","MemorySize":512,"Timeout":30,
				"Environment":{"Variables":{"K":"V"}},"Code":{"ZipFile":"` + zipB64 + `"},"Publish":false,
				"Role":"arn:aws:iam::1:role/x","Tags":{"a":"b"},"Architectures":["x86_64"]}`,
			wantStatus: 201,
			wantJSON: `{"FunctionName":"new","FunctionArn":"` + arnPrefix + `new","Runtime":"provided","Handler":"h",
				"MemorySize":512,"Timeout":30,"CodeSize":3,"CodeSha256":"` + sha256B64("zip") + `","Version":"$LATEST",
				"LastModified":"2026-03-04T05:06:07.890+0000","Environment":{"Variables":{"K":"V"}},"Description":"",
				"RevisionId":"1","State":"Active","LastUpdateStatus":"Successful","PackageType":"Zip"}`,
			wantHdr: map[string]string{"Content-Type": "application/json"},
			check: func(t *testing.T, m *fakeManager) {
				want := &gustv1.FunctionConfig{Name: "new", Runtime: "provided", Handler: "h", MemoryMb: 512,
					Timeout: durationpb.New(30 * time.Second), Environment: map[string]string{"K": "V"}}
				if !proto.Equal(m.lastCfg, want) || string(m.lastZip) != "zip" || m.lastPublish {
					t.Errorf("CreateFunction got %v %q %v", m.lastCfg, m.lastZip, m.lastPublish)
				}
			},
		},
		{
			name: "CreateFunction on functions/", method: "POST", target: fnsPath + "/",
			body:       `{"FunctionName":"new","Code":{"ZipFile":"` + zipB64 + `"},"PackageType":"Zip"}`,
			wantStatus: 201, wantJSON: `{"FunctionName":"new","Timeout":3,"MemorySize":128}`,
		},
		{
			name: "CreateFunction by ARN", method: "POST", target: fnsPath,
			body:       `{"FunctionName":"` + arnPrefix + `new","Code":{"ZipFile":"` + zipB64 + `"}}`,
			wantStatus: 201, wantJSON: `{"FunctionName":"new"}`,
		},
		{
			name: "CreateFunction bad JSON", method: "POST", target: fnsPath, body: `{"FunctionName":`,
			wantStatus: 400, wantErr: invalidRequestContent, wantMsg: "JSON",
		},
		{
			name: "CreateFunction wrong member type", method: "POST", target: fnsPath, body: `{"FunctionName":"x","MemorySize":"big"}`,
			wantStatus: 400, wantErr: invalidRequestContent,
		},
		{
			name: "CreateFunction trailing garbage", method: "POST", target: fnsPath, body: `{"FunctionName":"x"} {}`,
			wantStatus: 400, wantErr: invalidRequestContent,
		},
		{
			name: "CreateFunction ZipFile not base64", method: "POST", target: fnsPath, body: `{"FunctionName":"x","Code":{"ZipFile":"%%%"}}`,
			wantStatus: 400, wantErr: invalidRequestContent,
		},
		{
			name: "CreateFunction empty body", method: "POST", target: fnsPath,
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantMsg: "FunctionName is required",
		},
		{
			name: "CreateFunction without Code", method: "POST", target: fnsPath, body: `{"FunctionName":"x"}`,
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantMsg: "Code is required",
		},
		{
			name: "CreateFunction with empty ZipFile", method: "POST", target: fnsPath, body: `{"FunctionName":"x","Code":{"ZipFile":""}}`,
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantMsg: "Code.ZipFile is required",
		},
		{
			name: "CreateFunction bad ARN", method: "POST", target: fnsPath,
			body:       `{"FunctionName":"arn:aws:s3:::b","Code":{"ZipFile":"` + zipB64 + `"}}`,
			wantStatus: 400, wantErr: apierr.InvalidParameterValue,
		},
		{
			name: "CreateFunction over the code limit", method: "POST", target: fnsPath, opts: Options{MaxCodeRequest: 10},
			body:       `{"FunctionName":"x","Code":{"ZipFile":"` + zipB64 + `"}}`,
			wantStatus: 413, wantErr: apierr.RequestTooLarge,
		},
		{
			name: "GetFunction", method: "GET", target: fnsPath + "/fn",
			wantStatus: 200,
			wantJSON: `{"Configuration":{"FunctionName":"fn","FunctionArn":"` + arnPrefix + `fn","Version":"$LATEST","Handler":"bootstrap",
				"Environment":{"Variables":{"A":"1"}},"Runtime":"provided"},"Code":{"RepositoryType":"gust","Location":""}}`,
			wantAbsent: []string{"Concurrency", "Tags"},
		},
		{
			name: "GetFunction with Concurrency", method: "GET", target: fnsPath + "/fn?Qualifier=live",
			setup:      func(m *fakeManager) { m.fns["fn"].reserved = 3 },
			wantStatus: 200,
			wantJSON:   `{"Configuration":{"Version":"1","FunctionArn":"` + arnPrefix + `fn:1"},"Concurrency":{"ReservedConcurrentExecutions":3}}`,
		},
		{
			name: "GetFunction escaped ARN", method: "GET", target: fnsPath + "/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Afn%3A1",
			wantStatus: 200, wantJSON: `{"Configuration":{"Version":"1"}}`,
		},
		{
			name: "GetFunction missing", method: "GET", target: fnsPath + "/nope",
			wantStatus: 404, wantErr: apierr.ResourceNotFound, wantMsg: "Function not found: nope",
		},
		{
			name: "GetFunction qualifiers disagree", method: "GET", target: fnsPath + "/fn:1?Qualifier=2",
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantMsg: "does not match",
		},
		{
			name: "ListFunctions", method: "GET", target: fnsPath + "?MaxItems=1&Marker=x&FunctionVersion=ALL",
			wantStatus: 200, wantJSON: `{"Functions":[{"FunctionName":"fn","Version":"$LATEST"}]}`,
			wantAbsent: []string{"NextMarker"},
		},
		{
			name: "ListFunctions on functions/", method: "GET", target: fnsPath + "/",
			wantStatus: 200, wantJSON: `{"Functions":[{"FunctionName":"fn"}]}`,
		},
		{
			name: "ListFunctions empty is [] not null", method: "GET", target: fnsPath,
			setup:      func(m *fakeManager) { delete(m.fns, "fn") },
			wantStatus: 200, wantJSON: `{"Functions":[]}`,
		},
		{
			name: "ListFunctions malformed query", method: "GET", target: fnsPath + "?Marker=%zz",
			wantStatus: 400, wantErr: apierr.InvalidParameterValue,
		},
		{
			name: "DeleteFunction", method: "DELETE", target: fnsPath + "/fn",
			wantStatus: 204, wantHdr: map[string]string{"Content-Type": "", "Content-Length": "0"},
			check: func(t *testing.T, m *fakeManager) {
				if _, ok := m.fns["fn"]; ok || m.lastDelete != [2]string{"fn", ""} {
					t.Errorf("DeleteFunction got %v", m.lastDelete)
				}
			},
		},
		{
			name: "DeleteFunction version", method: "DELETE", target: fnsPath + "/fn?Qualifier=1",
			wantStatus: 204,
			check: func(t *testing.T, m *fakeManager) {
				if m.lastDelete != [2]string{"fn", "1"} {
					t.Errorf("DeleteFunction got %v", m.lastDelete)
				}
			},
		},
		{
			name: "UpdateFunctionCode", method: "PUT", target: fnsPath + "/fn/code", body: `{"ZipFile":"` + b64("new code") + `","Publish":true,"Architectures":["x86_64"]}`,
			wantStatus: 200, wantJSON: `{"Version":"2","CodeSize":8,"CodeSha256":"` + sha256B64("new code") + `","RevisionId":"2"}`,
			check: func(t *testing.T, m *fakeManager) {
				if string(m.lastZip) != "new code" || !m.lastPublish {
					t.Errorf("UpdateFunctionCode got %q %v", m.lastZip, m.lastPublish)
				}
			},
		},
		{
			name: "UpdateFunctionCode qualified", method: "PUT", target: fnsPath + "/fn:1/code", body: `{"ZipFile":"` + zipB64 + `"}`,
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantMsg: "qualifier",
		},
		{
			name: "UpdateFunctionCode from S3", method: "PUT", target: fnsPath + "/fn/code", body: `{"S3Bucket":"b","S3Key":"k"}`,
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantMsg: "ZipFile",
		},
		{
			name: "PublishVersion", method: "POST", target: fnsPath + "/fn/versions", body: `{"Description":"d"}`,
			setup:      func(m *fakeManager) { m.fns["fn"].latest.Revision++ },
			wantStatus: 201, wantJSON: `{"Version":"2","Description":"d","FunctionArn":"` + arnPrefix + `fn:2"}`,
		},
		{
			name: "PublishVersion without a body", method: "POST", target: fnsPath + "/fn/versions",
			wantStatus: 201, wantJSON: `{"Version":"1"}`,
		},
		{
			name: "PublishVersion RevisionId", method: "POST", target: fnsPath + "/fn/versions", body: `{"RevisionId":"1"}`,
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantMsg: "RevisionId",
		},
		{
			name: "CreateAlias", method: "POST", target: fnsPath + "/fn/aliases",
			body:       `{"Name":"beta","FunctionVersion":"$LATEST","Description":"b","RoutingConfig":{"AdditionalVersionWeights":{"1":0.5}}}`,
			wantStatus: 201,
			wantJSON: `{"AliasArn":"` + arnPrefix + `fn:beta","Name":"beta","FunctionVersion":"$LATEST","Description":"b",
				"RoutingConfig":{"AdditionalVersionWeights":{"1":0.5}},"RevisionId":"1"}`,
			check: func(t *testing.T, m *fakeManager) {
				want := &gustv1.Alias{Name: "beta", Function: "fn", Version: "$LATEST", Description: "b", AdditionalWeights: map[string]float64{"1": 0.5}}
				if !proto.Equal(m.lastAlias, want) || !m.lastCreate || m.lastUpdate {
					t.Errorf("PutAlias got %v create %v update %v", m.lastAlias, m.lastCreate, m.lastUpdate)
				}
			},
		},
		{
			name: "CreateAlias without FunctionVersion", method: "POST", target: fnsPath + "/fn/aliases", body: `{"Name":"beta"}`,
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantMsg: "FunctionVersion is required",
		},
		{
			name: "CreateAlias without Name", method: "POST", target: fnsPath + "/fn/aliases", body: `{"FunctionVersion":"1"}`,
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantMsg: "Name is required",
		},
		{
			name: "CreateAlias existing", method: "POST", target: fnsPath + "/fn/aliases", body: `{"Name":"live","FunctionVersion":"1"}`,
			wantStatus: 409, wantErr: "ResourceConflictException",
		},
		{
			name: "UpdateAlias", method: "PUT", target: fnsPath + "/fn/aliases/live", body: `{"FunctionVersion":"$LATEST","Description":"x"}`,
			wantStatus: 200, wantJSON: `{"Name":"live","FunctionVersion":"$LATEST","Description":"x","RevisionId":"2"}`,
			wantAbsent: []string{"RoutingConfig"},
			check: func(t *testing.T, m *fakeManager) {
				if m.lastCreate || !m.lastUpdate {
					t.Errorf("PutAlias create %v update %v", m.lastCreate, m.lastUpdate)
				}
			},
		},
		{
			name: "UpdateAlias with getter, description only", method: "PUT", target: fnsPath + "/fn/aliases/live", body: `{"Description":"x"}`,
			wrap:       func(m *fakeManager) Invoker { return aliasGetterManager{m} },
			wantStatus: 200, wantJSON: `{"FunctionVersion":"1","Description":"x"}`,
		},
		{
			name: "UpdateAlias missing", method: "PUT", target: fnsPath + "/fn/aliases/nope", body: `{"FunctionVersion":"1"}`,
			wantStatus: 404, wantErr: apierr.ResourceNotFound,
		},
		{
			name: "UpdateAlias empty FunctionVersion", method: "PUT", target: fnsPath + "/fn/aliases/live", body: `{"FunctionVersion":""}`,
			wantStatus: 400, wantErr: apierr.InvalidParameterValue,
		},
		{
			name: "PutFunctionConcurrency", method: "PUT", target: "/2017-10-31/functions/fn/concurrency", body: `{"ReservedConcurrentExecutions":5}`,
			wantStatus: 200, wantJSON: `{"ReservedConcurrentExecutions":5}`,
		},
		{
			name: "PutFunctionConcurrency 0", method: "PUT", target: "/2017-10-31/functions/fn/concurrency", body: `{"ReservedConcurrentExecutions":0}`,
			wantStatus: 200, wantJSON: `{"ReservedConcurrentExecutions":0}`,
		},
		{
			name: "PutFunctionConcurrency missing member", method: "PUT", target: "/2017-10-31/functions/fn/concurrency", body: `{}`,
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantMsg: "ReservedConcurrentExecutions is required",
		},
		{
			name: "PutFunctionConcurrency over 1 MiB", method: "PUT", target: "/2017-10-31/functions/fn/concurrency",
			body:       `{"ReservedConcurrentExecutions":5,"x":"` + strings.Repeat("x", 1<<20) + `"}`,
			wantStatus: 413, wantErr: apierr.RequestTooLarge,
		},
		{
			name: "Manager's TooManyRequests keeps its reason", method: "GET", target: fnsPath,
			setup: func(m *fakeManager) {
				m.err = &apierr.Error{Name: apierr.TooManyRequests, Reason: "CallerRateLimitExceeded", Message: "slow down"}
			},
			wantStatus: 429, wantErr: apierr.TooManyRequests, wantMsg: "slow down",
		},
		{
			name: "Manager's plain error", method: "DELETE", target: fnsPath + "/fn",
			setup:      func(m *fakeManager) { m.err = errors.New("disk on fire") },
			wantStatus: 500, wantErr: apierr.Service, wantMsg: "disk on fire",
		},
		{
			name: "wrong method on functions", method: "PATCH", target: fnsPath,
			wantStatus: 405, wantErr: unknownOperation, wantHdr: map[string]string{"Allow": "GET, POST"},
		},
		{
			name: "wrong method on a function", method: "POST", target: fnsPath + "/fn",
			wantStatus: 405, wantErr: unknownOperation, wantHdr: map[string]string{"Allow": "GET, DELETE"},
		},
		{
			name: "ListAliases is not served", method: "GET", target: fnsPath + "/fn/aliases",
			wantStatus: 405, wantErr: unknownOperation, wantHdr: map[string]string{"Allow": "POST"},
		},
		{
			name: "DeleteFunctionConcurrency is not served", method: "DELETE", target: "/2017-10-31/functions/fn/concurrency",
			wantStatus: 405, wantErr: unknownOperation, wantHdr: map[string]string{"Allow": "PUT"},
		},
		{
			name: "GetAlias is not served", method: "GET", target: fnsPath + "/fn/aliases/live",
			wantStatus: 405, wantErr: unknownOperation,
		},
		{
			name: "GetFunctionConfiguration is not served", method: "GET", target: fnsPath + "/fn/configuration",
			wantStatus: 404, wantErr: unknownOperation,
		},
		{
			name: "without a Manager", method: "GET", target: fnsPath + "/fn",
			wrap:       func(m *fakeManager) Invoker { return m.fakeInvoker },
			wantStatus: 404, wantErr: unknownOperation,
		},
		{
			name: "without a Manager, create", method: "POST", target: fnsPath, body: `{}`,
			wrap:       func(m *fakeManager) Invoker { return m.fakeInvoker },
			wantStatus: 404, wantErr: unknownOperation,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newFakeManager()
			m.seed("fn")
			if tt.setup != nil {
				tt.setup(m)
			}
			var inv Invoker = m
			if tt.wrap != nil {
				inv = tt.wrap(m)
			}
			var body io.Reader = http.NoBody
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req := httptest.NewRequest(tt.method, tt.target, body)
			rec := httptest.NewRecorder()
			Handler(inv, tt.opts).ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if rec.Header().Get(hdrRequestID) == "" {
				t.Errorf("no %s", hdrRequestID)
			}
			for k, v := range tt.wantHdr {
				if got, ok := rec.Header()[http.CanonicalHeaderKey(k)]; v == "" && ok && !(k == "Content-Length" && got[0] == "0") {
					t.Errorf("header %s = %q, want absent", k, got)
				} else if v != "" && rec.Header().Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, rec.Header().Get(k), v)
				}
			}
			if tt.wantErr != "" {
				if got := rec.Header().Get(hdrErrorType); got != tt.wantErr {
					t.Errorf("%s = %q, want %q", hdrErrorType, got, tt.wantErr)
				}
				if eb := errShape(t, rec); !strings.Contains(eb.Message, tt.wantMsg) {
					t.Errorf("message %q, want it to contain %q", eb.Message, tt.wantMsg)
				}
				return
			}
			if rec.Header().Get(hdrErrorType) != "" {
				t.Errorf("success with %s", hdrErrorType)
			}
			if tt.wantStatus == 204 {
				if rec.Body.Len() != 0 {
					t.Errorf("204 with body %q", rec.Body)
				}
			} else {
				var got map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatalf("body %q: %v", rec.Body, err)
				}
				if tt.wantJSON != "" {
					var want map[string]any
					if err := json.Unmarshal([]byte(tt.wantJSON), &want); err != nil {
						t.Fatalf("bad wantJSON: %v", err)
					}
					if !jsonSubset(got, want) {
						t.Errorf("body %s\ndoes not hold %s", rec.Body, tt.wantJSON)
					}
				}
				for _, k := range tt.wantAbsent {
					if _, ok := got[k]; ok {
						t.Errorf("body has %s: %s", k, rec.Body)
					}
				}
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

// A declared Content-Length over the code limit is refused unread, and an
// endless code upload is read no further than the limit.
func TestCodeUploadIsBounded(t *testing.T) {
	h := Handler(newFakeManager(), Options{MaxCodeRequest: 1000})
	body := &countingReader{}
	req := httptest.NewRequest(http.MethodPost, fnsPath, body)
	req.ContentLength = DefaultMaxCodeRequest + 1
	rec := httptest.NewRecorder()
	Handler(newFakeManager(), Options{}).ServeHTTP(rec, req)
	if rec.Code != 413 || body.n != 0 {
		t.Errorf("declared %d bytes: status %d after reading %d", req.ContentLength, rec.Code, body.n)
	}

	body = &countingReader{}
	req = httptest.NewRequest(http.MethodPut, fnsPath+"/fn/code", body)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 413 || body.n > 1001 {
		t.Errorf("endless body: status %d after reading %d", rec.Code, body.n)
	}
}

func TestConfigurationMapping(t *testing.T) {
	h := &handler{opts: Options{Region: "eu-west-1", AccountID: "123456789012"}}
	fn := &gustv1.Function{
		Config: &gustv1.FunctionConfig{Name: "f", Timeout: durationpb.New(1500 * time.Millisecond)},
		// sha256("")
		CodeDigest:   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		Version:      "12",
		LastModified: timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.FixedZone("x", 3600))),
	}
	c := h.configuration(fn)
	if c.FunctionArn != "arn:aws:lambda:eu-west-1:123456789012:function:f:12" || c.CodeSha256 != "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" ||
		*c.Timeout != 2 || c.LastModified != "2026-01-02T02:04:05.006+0000" || c.MemorySize != nil || c.Environment != nil || c.RevisionId != "" {
		t.Errorf("configuration = %+v", c)
	}
	if got := codeSha256("not hex"); got != "not hex" {
		t.Errorf("codeSha256(not hex) = %q", got)
	}
	if got := h.arn("f", "$LATEST"); got != "arn:aws:lambda:eu-west-1:123456789012:function:f" {
		t.Errorf("arn($LATEST) = %q", got)
	}
	// A nil function does not panic (a Manager bug must not kill the server).
	_ = h.configuration(nil)
	_ = h.aliasConfiguration(nil)
}
