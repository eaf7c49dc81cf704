package cluster_test

// The unmodified aws-sdk-go-v2 Lambda client, pointed at a follower's HTTP
// address, drives every call of the Lambda REST subset and gets Lambda's
// answers: status codes, headers, typed errors, and executed versions
// through an alias. A function URL answers with the function's body.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/gustfaas/gust/internal/testutil"
)

func TestLambdaSDKAgainstFollower(t *testing.T) {
	c := startCluster(t)
	peers := c.WaitHealthy(t, 45*time.Second, 5, 3)
	var follower *node
	for _, p := range peers {
		if p.State != "leader" {
			follower = c.ByName(p.Name)
			break
		}
	}
	sdk := lambda.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String("http://" + follower.HTTP),
	})
	ctx := context.Background()
	zipPath := zipProbe(t)
	code, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}

	// CreateFunction with ZipFile.
	created, err := sdk.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("sdkfn"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::000000000000:role/none"), Code: &types.FunctionCode{ZipFile: code},
		Timeout: aws.Int32(5), MemorySize: aws.Int32(128),
		Environment: &types.Environment{Variables: map[string]string{"STAGE": "one"}},
	})
	if err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	if aws.ToString(created.FunctionName) != "sdkfn" || aws.ToString(created.Version) != "$LATEST" {
		t.Fatalf("CreateFunction answered %+v", created)
	}

	// Invoke: RequestResponse with a log tail.
	out, err := sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("sdkfn"),
		Payload: []byte(`{"action":"env","key":"STAGE"}`), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if out.StatusCode != 200 || !strings.Contains(string(out.Payload), `"value":"one"`) ||
		aws.ToString(out.ExecutedVersion) != "$LATEST" || !strings.Contains(string(tail), "REPORT RequestId") {
		t.Fatalf("Invoke: status %d payload %s version %s tail %q", out.StatusCode, out.Payload, aws.ToString(out.ExecutedVersion), tail)
	}
	// A function error: 200 with X-Amz-Function-Error.
	out, err = sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("sdkfn"), Payload: []byte(`{"action":"error"}`)})
	if err != nil || aws.ToString(out.FunctionError) == "" || !strings.Contains(string(out.Payload), "errorMessage") {
		t.Fatalf("function error: %v %+v", err, out)
	}
	// Event (202) and DryRun (204).
	if out, err = sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("sdkfn"), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(`{}`)}); err != nil || out.StatusCode != 202 {
		t.Fatalf("Event: %v %+v", err, out)
	}
	if out, err = sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("sdkfn"), InvocationType: types.InvocationTypeDryRun}); err != nil || out.StatusCode != 204 {
		t.Fatalf("DryRun: %v %+v", err, out)
	}

	// PublishVersion, UpdateFunctionCode with Publish, aliases.
	v1, err := sdk.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("sdkfn"), Description: aws.String("one")})
	if err != nil || aws.ToString(v1.Version) != "1" {
		t.Fatalf("PublishVersion: %v %+v", err, v1)
	}
	v2, err := sdk.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("sdkfn"), ZipFile: code, Publish: true})
	if err != nil || aws.ToString(v2.Version) == "" {
		t.Fatalf("UpdateFunctionCode: %v %+v", err, v2)
	}
	alias, err := sdk.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("sdkfn"), Name: aws.String("live"), FunctionVersion: aws.String("1")})
	if err != nil || aws.ToString(alias.FunctionVersion) != "1" {
		t.Fatalf("CreateAlias: %v %+v", err, alias)
	}
	out, err = sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("sdkfn"), Qualifier: aws.String("live"), Payload: []byte(`{}`)})
	if err != nil {
		t.Fatalf("Invoke through alias: %v", err)
	}
	if aws.ToString(out.ExecutedVersion) != "1" {
		t.Fatalf("Invoke through alias ran version %q", aws.ToString(out.ExecutedVersion))
	}
	if _, err := sdk.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("sdkfn"), Name: aws.String("live"),
		FunctionVersion: aws.String("1"), RoutingConfig: &types.AliasRoutingConfiguration{
			AdditionalVersionWeights: map[string]float64{aws.ToString(v2.Version): 0.5}}}); err != nil {
		t.Fatalf("UpdateAlias: %v", err)
	}
	versions := map[string]bool{}
	for i := 0; i < 30; i++ {
		out, err := sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("sdkfn:live"), Payload: []byte(`{}`)})
		if err != nil {
			t.Fatalf("weighted alias invoke: %v", err)
		}
		versions[aws.ToString(out.ExecutedVersion)] = true
	}
	if !versions["1"] || !versions[aws.ToString(v2.Version)] {
		t.Errorf("a 50%% weighted alias ran only versions %v", versions)
	}

	// GetFunction (with Concurrency), ListFunctions, PutFunctionConcurrency.
	if _, err := sdk.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("sdkfn"),
		ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatalf("PutFunctionConcurrency: %v", err)
	}
	got, err := sdk.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("sdkfn")})
	if err != nil || got.Concurrency == nil || aws.ToInt32(got.Concurrency.ReservedConcurrentExecutions) != 1 {
		t.Fatalf("GetFunction: %v %+v", err, got)
	}
	list, err := sdk.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(list.Functions) != 1 {
		t.Fatalf("ListFunctions: %v %+v", err, list)
	}

	// Typed errors.
	var notFound *types.ResourceNotFoundException
	if _, err := sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope")}); !errors.As(err, &notFound) {
		t.Errorf("missing function: %v", err)
	}
	var tooLarge *types.RequestTooLargeException
	if _, err := sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("sdkfn"), Payload: []byte(`"` + strings.Repeat("x", 6<<20) + `"`)}); !errors.As(err, &tooLarge) {
		t.Errorf("6 MB payload: %v", err)
	}
	var invalid *types.InvalidParameterValueException
	if _, err := sdk.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("sdkfn"), Name: aws.String("bad"),
		FunctionVersion: aws.String("1"), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 3}}}); !errors.As(err, &invalid) {
		t.Errorf("bad weight: %v", err)
	}
	// Reserved concurrency 1 and three at once: a TooManyRequestsException with its reason.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var throttled *types.TooManyRequestsException
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("sdkfn"), Payload: []byte(`{"action":"sleep","n":1000}`)})
			var e *types.TooManyRequestsException
			if errors.As(err, &e) {
				mu.Lock()
				throttled = e
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if throttled == nil || throttled.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Errorf("no TooManyRequestsException with the reserved reason: %+v", throttled)
	}

	// A function URL answers with the function's body.
	if _, err := sdk.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("sdkfn"),
		ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatalf("PutFunctionConcurrency 0: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Post("http://"+follower.HTTP+"/fn/sdkfn/some/path?x=1", "application/json", strings.NewReader(`{"action":"echo","data":"url"}`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body map[string]any
		return resp.StatusCode == 200 && json.Unmarshal(b, &body) == nil
	}, "function URL never answered 200")

	// DeleteFunction: 204, then not found.
	if _, err := sdk.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("sdkfn")}); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	if _, err := sdk.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("sdkfn")}); !errors.As(err, &notFound) {
		t.Errorf("GetFunction after delete: %v", err)
	}
}

// zipProbe writes the probe function as a Lambda zip.
func zipProbe(t *testing.T) string {
	t.Helper()
	dir := probeCode(t)
	data, err := os.ReadFile(filepath.Join(dir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "probe.zip")
	if err := os.WriteFile(path, testutil.BootstrapZip(t, data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
