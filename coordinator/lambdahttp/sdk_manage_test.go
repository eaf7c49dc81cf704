package lambdahttp

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/gustfaas/gust/internal/apierr"
)

const arnPrefix = "arn:aws:lambda:us-east-1:000000000000:function:"

// checkConfig compares the members of a decoded FunctionConfiguration that
// gust fills in.
func checkConfig(t *testing.T, what string, got *types.FunctionConfiguration, want types.FunctionConfiguration) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no configuration", what)
	}
	str := aws.ToString
	i32 := func(p *int32) int32 { return aws.ToInt32(p) }
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"FunctionName", str(got.FunctionName), str(want.FunctionName)},
		{"FunctionArn", str(got.FunctionArn), str(want.FunctionArn)},
		{"Runtime", got.Runtime, want.Runtime},
		{"Handler", str(got.Handler), str(want.Handler)},
		{"MemorySize", i32(got.MemorySize), i32(want.MemorySize)},
		{"Timeout", i32(got.Timeout), i32(want.Timeout)},
		{"CodeSha256", str(got.CodeSha256), str(want.CodeSha256)},
		{"CodeSize", got.CodeSize, want.CodeSize},
		{"Version", str(got.Version), str(want.Version)},
		{"Description", str(got.Description), str(want.Description)},
		{"RevisionId", str(got.RevisionId), str(want.RevisionId)},
		{"State", got.State, types.StateActive},
		{"LastUpdateStatus", got.LastUpdateStatus, types.LastUpdateStatusSuccessful},
		{"PackageType", got.PackageType, types.PackageTypeZip},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s = %v, want %v", what, c.field, c.got, c.want)
		}
	}
	if want.Environment != nil {
		if got.Environment == nil || len(got.Environment.Variables) != len(want.Environment.Variables) {
			t.Errorf("%s: Environment = %+v, want %+v", what, got.Environment, want.Environment)
		} else {
			for k, v := range want.Environment.Variables {
				if got.Environment.Variables[k] != v {
					t.Errorf("%s: Environment[%s] = %q, want %q", what, k, got.Environment.Variables[k], v)
				}
			}
		}
	}
	if _, err := time.Parse(lastModifiedLayout, str(got.LastModified)); err != nil {
		t.Errorf("%s: LastModified %q: %v", what, str(got.LastModified), err)
	}
}

// sha256B64 is Lambda's CodeSha256 of zip.
func sha256B64(zip string) string { return codeSha256(digest([]byte(zip))) }

// A whole deploy through the unmodified SDK: every management call, with
// the decoded outputs checked member by member.
func TestSDKManagement(t *testing.T) {
	m := newFakeManager()
	c := sdkClient(t, m, Options{})
	cx := ctx(t)

	// CreateFunction with a zip, environment, memory and timeout.
	zip1 := "PK\x03\x04 first zip \x00\xff"
	created, err := c.CreateFunction(cx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("hello"),
		Role:         aws.String("arn:aws:iam::000000000000:role/ignored"),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		MemorySize:   aws.Int32(256),
		Timeout:      aws.Int32(10),
		Environment:  &types.Environment{Variables: map[string]string{"GREETING": "hi", "EMPTY": ""}},
		Code:         &types.FunctionCode{ZipFile: []byte(zip1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := awsmiddleware.GetRequestIDMetadata(created.ResultMetadata); id == "" {
		t.Errorf("CreateFunction: no request id")
	}
	base := types.FunctionConfiguration{
		FunctionName: aws.String("hello"), FunctionArn: aws.String(arnPrefix + "hello"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), MemorySize: aws.Int32(256), Timeout: aws.Int32(10),
		CodeSha256: aws.String(sha256B64(zip1)), CodeSize: int64(len(zip1)), Version: aws.String("$LATEST"),
		Description: aws.String(""), RevisionId: aws.String("1"),
		Environment: &types.EnvironmentResponse{Variables: map[string]string{"GREETING": "hi", "EMPTY": ""}},
	}
	checkConfig(t, "CreateFunction", &types.FunctionConfiguration{
		FunctionName: created.FunctionName, FunctionArn: created.FunctionArn, Runtime: created.Runtime, Handler: created.Handler,
		MemorySize: created.MemorySize, Timeout: created.Timeout, CodeSha256: created.CodeSha256, CodeSize: created.CodeSize,
		Version: created.Version, Description: created.Description, RevisionId: created.RevisionId, State: created.State,
		LastUpdateStatus: created.LastUpdateStatus, PackageType: created.PackageType, Environment: created.Environment,
		LastModified: created.LastModified,
	}, base)
	if aws.ToString(created.LastModified) != "2026-03-04T05:06:07.890+0000" {
		t.Errorf("LastModified = %q", aws.ToString(created.LastModified))
	}
	if string(m.lastZip) != zip1 || m.lastPublish || m.lastCfg.GetTimeout().AsDuration() != 10*time.Second ||
		m.lastCfg.GetMemoryMb() != 256 || m.lastCfg.GetRuntime() != "provided.al2023" || m.lastCfg.GetEnvironment()["GREETING"] != "hi" {
		t.Errorf("CreateFunction got cfg %v zip %q publish %v", m.lastCfg, m.lastZip, m.lastPublish)
	}

	// A second one, published at creation, with the Manager's defaults.
	other, err := c.CreateFunction(cx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("other"), Role: aws.String("r"), Publish: true,
		Code: &types.FunctionCode{ZipFile: []byte("other zip")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(other.Version) != "1" || aws.ToString(other.FunctionArn) != arnPrefix+"other:1" ||
		aws.ToInt32(other.Timeout) != 3 || aws.ToInt32(other.MemorySize) != 128 || other.Runtime != "provided" || !m.lastPublish ||
		m.lastCfg.Timeout != nil || m.lastCfg.MemoryMb != 0 {
		t.Errorf("CreateFunction Publish: version %q arn %q timeout %d memory %d runtime %q; Manager got %v",
			aws.ToString(other.Version), aws.ToString(other.FunctionArn), aws.ToInt32(other.Timeout),
			aws.ToInt32(other.MemorySize), other.Runtime, m.lastCfg)
	}

	// GetFunction: configuration, code location, no concurrency yet.
	got, err := c.GetFunction(cx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")})
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, "GetFunction", got.Configuration, base)
	if got.Code == nil || aws.ToString(got.Code.RepositoryType) != "gust" || got.Concurrency != nil {
		t.Errorf("GetFunction: Code %+v Concurrency %+v", got.Code, got.Concurrency)
	}

	// ListFunctions.
	list, err := c.ListFunctions(cx, &lambda.ListFunctionsInput{MaxItems: aws.Int32(1), Marker: aws.String("ignored")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Functions) != 2 || list.NextMarker != nil {
		t.Fatalf("ListFunctions: %d functions, NextMarker %v", len(list.Functions), list.NextMarker)
	}
	checkConfig(t, "ListFunctions[0]", &list.Functions[0], base)
	if aws.ToString(list.Functions[1].FunctionName) != "other" || aws.ToString(list.Functions[1].Version) != "$LATEST" {
		t.Errorf("ListFunctions[1] = %s %s", aws.ToString(list.Functions[1].FunctionName), aws.ToString(list.Functions[1].Version))
	}
	// The paginator stops after the one page.
	p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{})
	pages := 0
	for p.HasMorePages() {
		if _, err := p.NextPage(cx); err != nil {
			t.Fatal(err)
		}
		pages++
	}
	if pages != 1 {
		t.Errorf("ListFunctions paginator read %d pages", pages)
	}

	// UpdateFunctionCode with Publish: the new code as version 1.
	zip2 := "PK\x03\x04 second zip"
	upd, err := c.UpdateFunctionCode(cx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("hello"), ZipFile: []byte(zip2), Publish: true})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(upd.Version) != "1" || aws.ToString(upd.FunctionArn) != arnPrefix+"hello:1" ||
		aws.ToString(upd.CodeSha256) != sha256B64(zip2) || upd.CodeSize != int64(len(zip2)) || aws.ToString(upd.RevisionId) != "2" ||
		string(m.lastZip) != zip2 || !m.lastPublish {
		t.Errorf("UpdateFunctionCode: version %q arn %q sha %q size %d revision %q",
			aws.ToString(upd.Version), aws.ToString(upd.FunctionArn), aws.ToString(upd.CodeSha256), upd.CodeSize, aws.ToString(upd.RevisionId))
	}

	// UpdateFunctionCode without Publish, then PublishVersion: version 2.
	if _, err := c.UpdateFunctionCode(cx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(arnPrefix + "hello"), ZipFile: []byte("third")}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.PublishVersion(cx, &lambda.PublishVersionInput{FunctionName: aws.String("hello"), Description: aws.String("third time")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(pub.Version) != "2" || aws.ToString(pub.Description) != "third time" || aws.ToString(pub.FunctionArn) != arnPrefix+"hello:2" ||
		aws.ToString(pub.CodeSha256) != sha256B64("third") {
		t.Errorf("PublishVersion: version %q description %q arn %q", aws.ToString(pub.Version), aws.ToString(pub.Description), aws.ToString(pub.FunctionArn))
	}

	// CreateAlias, then UpdateAlias with weights.
	al, err := c.CreateAlias(cx, &lambda.CreateAliasInput{FunctionName: aws.String("hello"), Name: aws.String("live"),
		FunctionVersion: aws.String("1"), Description: aws.String("production")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(al.AliasArn) != arnPrefix+"hello:live" || aws.ToString(al.Name) != "live" || aws.ToString(al.FunctionVersion) != "1" ||
		aws.ToString(al.Description) != "production" || al.RoutingConfig != nil || aws.ToString(al.RevisionId) != "1" ||
		!m.lastCreate || m.lastUpdate {
		t.Errorf("CreateAlias = %+v", al)
	}
	ua, err := c.UpdateAlias(cx, &lambda.UpdateAliasInput{FunctionName: aws.String("hello"), Name: aws.String("live"),
		FunctionVersion: aws.String("2"), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.25}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(ua.FunctionVersion) != "2" || ua.RoutingConfig == nil || ua.RoutingConfig.AdditionalVersionWeights["1"] != 0.25 ||
		aws.ToString(ua.RevisionId) != "2" || m.lastCreate || !m.lastUpdate {
		t.Errorf("UpdateAlias = version %q routing %+v revision %q", aws.ToString(ua.FunctionVersion), ua.RoutingConfig, aws.ToString(ua.RevisionId))
	}
	// Without an AliasGetter, Description is replaced by what was sent.
	if aws.ToString(ua.Description) != "" {
		t.Errorf("UpdateAlias Description = %q", aws.ToString(ua.Description))
	}

	// GetFunction through the alias, with the qualifier in the name.
	viaAlias, err := c.GetFunction(cx, &lambda.GetFunctionInput{FunctionName: aws.String("hello:live")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(viaAlias.Configuration.Version) != "2" {
		t.Errorf("GetFunction hello:live: version %q", aws.ToString(viaAlias.Configuration.Version))
	}

	// PutFunctionConcurrency, then GetFunction shows it.
	pc, err := c.PutFunctionConcurrency(cx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("hello"), ReservedConcurrentExecutions: aws.Int32(7)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(pc.ReservedConcurrentExecutions) != 7 || m.lastReserve != 7 {
		t.Errorf("PutFunctionConcurrency = %d", aws.ToInt32(pc.ReservedConcurrentExecutions))
	}
	got, err = c.GetFunction(cx, &lambda.GetFunctionInput{FunctionName: aws.String("hello"), Qualifier: aws.String("1")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Concurrency == nil || aws.ToInt32(got.Concurrency.ReservedConcurrentExecutions) != 7 || aws.ToString(got.Configuration.Version) != "1" {
		t.Errorf("GetFunction after PutFunctionConcurrency: Concurrency %+v version %q", got.Concurrency, aws.ToString(got.Configuration.Version))
	}

	// DeleteFunction of one version, then of everything.
	del, err := c.DeleteFunction(cx, &lambda.DeleteFunctionInput{FunctionName: aws.String("hello"), Qualifier: aws.String("1")})
	if err != nil {
		t.Fatal(err)
	}
	if del.StatusCode != 204 || m.lastDelete != [2]string{"hello", "1"} {
		t.Errorf("DeleteFunction version: status %d, Manager got %v", del.StatusCode, m.lastDelete)
	}
	if _, err := c.DeleteFunction(cx, &lambda.DeleteFunctionInput{FunctionName: aws.String("hello")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetFunction(cx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || httpStatus(err) != 404 || nf.ErrorMessage() != "Function not found: hello" || aws.ToString(nf.Type) != "User" {
		t.Errorf("GetFunction after delete: %v, want ResourceNotFoundException", err)
	}
}

// UpdateAlias with an AliasGetter keeps what the request leaves out.
func TestSDKUpdateAliasKeepsOmittedMembers(t *testing.T) {
	m := newFakeManager()
	m.seed("fn")
	if _, err := m.PublishVersion(t.Context(), "fn", ""); err != nil { // unchanged: still 1
		t.Fatal(err)
	}
	m.fns["fn"].latest.Revision++
	if _, err := m.PublishVersion(t.Context(), "fn", ""); err != nil { // 2
		t.Fatal(err)
	}
	c := sdkClient(t, aliasGetterManager{m}, Options{})
	if _, err := c.UpdateAlias(ctx(t), &lambda.UpdateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live"),
		Description: aws.String("canary")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.UpdateAlias(ctx(t), &lambda.UpdateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.1}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.FunctionVersion) != "1" || aws.ToString(out.Description) != "canary" ||
		out.RoutingConfig == nil || out.RoutingConfig.AdditionalVersionWeights["2"] != 0.1 {
		t.Errorf("UpdateAlias = version %q description %q routing %+v", aws.ToString(out.FunctionVersion), aws.ToString(out.Description), out.RoutingConfig)
	}
	// An empty RoutingConfig removes the weights, and keeps the rest.
	out, err = c.UpdateAlias(ctx(t), &lambda.UpdateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{}}})
	if err != nil {
		t.Fatal(err)
	}
	if out.RoutingConfig != nil || aws.ToString(out.Description) != "canary" || aws.ToString(out.FunctionVersion) != "1" {
		t.Errorf("UpdateAlias clearing weights = %+v", out)
	}
	// A missing alias is the getter's 404.
	_, err = c.UpdateAlias(ctx(t), &lambda.UpdateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("nope")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("UpdateAlias of a missing alias: %v", err)
	}
}

func TestSDKManagementErrors(t *testing.T) {
	t.Run("ResourceNotFoundException", func(t *testing.T) {
		c := sdkClient(t, newFakeManager(), Options{})
		for name, call := range map[string]func() error{
			"GetFunction": func() error {
				_, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("nope")})
				return err
			},
			"DeleteFunction": func() error {
				_, err := c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("nope")})
				return err
			},
			"UpdateFunctionCode": func() error {
				_, err := c.UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("nope"), ZipFile: []byte("z")})
				return err
			},
			"PublishVersion": func() error {
				_, err := c.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("nope")})
				return err
			},
			"CreateAlias": func() error {
				_, err := c.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("nope"), Name: aws.String("a"), FunctionVersion: aws.String("1")})
				return err
			},
			"PutFunctionConcurrency": func() error {
				_, err := c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("nope"), ReservedConcurrentExecutions: aws.Int32(1)})
				return err
			},
		} {
			err := call()
			var e *types.ResourceNotFoundException
			if !errors.As(err, &e) || httpStatus(err) != 404 || !strings.Contains(e.ErrorMessage(), "nope") {
				t.Errorf("%s: %v (status %d), want ResourceNotFoundException", name, err, httpStatus(err))
			}
		}
	})
	t.Run("InvalidParameterValueException from the handler", func(t *testing.T) {
		m := newFakeManager()
		m.seed("fn")
		c := sdkClient(t, m, Options{})
		for name, call := range map[string]func() error{
			"CreateFunction without ZipFile": func() error {
				_, err := c.CreateFunction(ctx(t), &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"), Code: &types.FunctionCode{}})
				return err
			},
			"CreateFunction from S3": func() error {
				_, err := c.CreateFunction(ctx(t), &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"),
					Code: &types.FunctionCode{S3Bucket: aws.String("b"), S3Key: aws.String("k")}})
				return err
			},
			"CreateFunction image": func() error {
				_, err := c.CreateFunction(ctx(t), &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"),
					PackageType: types.PackageTypeImage, Code: &types.FunctionCode{ImageUri: aws.String("img")}})
				return err
			},
			"CreateFunction qualified name": func() error {
				_, err := c.CreateFunction(ctx(t), &lambda.CreateFunctionInput{FunctionName: aws.String("x:1"), Role: aws.String("r"),
					Code: &types.FunctionCode{ZipFile: []byte("z")}})
				return err
			},
			"UpdateFunctionCode without ZipFile": func() error {
				_, err := c.UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn")})
				return err
			},
			"UpdateFunctionCode DryRun": func() error {
				_, err := c.UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn"), ZipFile: []byte("z"), DryRun: true})
				return err
			},
			"UpdateFunctionCode RevisionId": func() error {
				_, err := c.UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn"), ZipFile: []byte("z"), RevisionId: aws.String("1")})
				return err
			},
			"PublishVersion CodeSha256": func() error {
				_, err := c.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("fn"), CodeSha256: aws.String("x")})
				return err
			},
			"UpdateAlias without FunctionVersion or getter": func() error {
				_, err := c.UpdateAlias(ctx(t), &lambda.UpdateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live"), Description: aws.String("d")})
				return err
			},
			"PutFunctionConcurrency negative": func() error {
				_, err := c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("fn"), ReservedConcurrentExecutions: aws.Int32(-1)})
				return err
			},
			"PutFunctionConcurrency on a version": func() error {
				_, err := c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("fn:1"), ReservedConcurrentExecutions: aws.Int32(1)})
				return err
			},
			"GetFunction qualifiers disagree": func() error {
				_, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("fn:1"), Qualifier: aws.String("2")})
				return err
			},
		} {
			err := call()
			var e *types.InvalidParameterValueException
			if !errors.As(err, &e) || httpStatus(err) != 400 || aws.ToString(e.Type) != "User" || e.ErrorMessage() == "" {
				t.Errorf("%s: %v (status %d), want InvalidParameterValueException 400", name, err, httpStatus(err))
			}
		}
	})
	t.Run("InvalidParameterValueException from the Manager", func(t *testing.T) {
		m := newFakeManager()
		m.err = apierr.New(apierr.InvalidParameterValue, "memory 1 MB is outside 128 to 10240 MB")
		c := sdkClient(t, m, Options{})
		_, err := c.CreateFunction(ctx(t), &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"),
			MemorySize: aws.Int32(1), Code: &types.FunctionCode{ZipFile: []byte("z")}})
		var e *types.InvalidParameterValueException
		if !errors.As(err, &e) || e.ErrorMessage() != "memory 1 MB is outside 128 to 10240 MB" {
			t.Errorf("CreateFunction: %v, want the Manager's InvalidParameterValueException", err)
		}
	})
	t.Run("ResourceConflictException", func(t *testing.T) {
		m := newFakeManager()
		m.seed("fn")
		c := sdkClient(t, m, Options{})
		_, err := c.CreateFunction(ctx(t), &lambda.CreateFunctionInput{FunctionName: aws.String("fn"), Role: aws.String("r"),
			Code: &types.FunctionCode{ZipFile: []byte("z")}})
		var e *types.ResourceConflictException
		if !errors.As(err, &e) || httpStatus(err) != 409 {
			t.Errorf("CreateFunction of an existing function: %v (status %d), want ResourceConflictException 409", err, httpStatus(err))
		}
		_, err = c.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live"), FunctionVersion: aws.String("1")})
		if !errors.As(err, &e) || httpStatus(err) != 409 {
			t.Errorf("CreateAlias of an existing alias: %v (status %d), want ResourceConflictException 409", err, httpStatus(err))
		}
	})
	t.Run("RequestTooLargeException", func(t *testing.T) {
		m := newFakeManager()
		m.seed("fn")
		c := sdkClient(t, m, Options{MaxCodeRequest: 4 << 10})
		big := make([]byte, 3<<10) // 4 KiB of base64
		_, err := c.CreateFunction(ctx(t), &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"),
			Code: &types.FunctionCode{ZipFile: big}})
		var e *types.RequestTooLargeException
		if !errors.As(err, &e) || httpStatus(err) != 413 || aws.ToString(e.Type) != "User" {
			t.Errorf("CreateFunction over the limit: %v (status %d), want RequestTooLargeException 413", err, httpStatus(err))
		}
		_, err = c.UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn"), ZipFile: big})
		if !errors.As(err, &e) || httpStatus(err) != 413 {
			t.Errorf("UpdateFunctionCode over the limit: %v (status %d), want RequestTooLargeException 413", err, httpStatus(err))
		}
		// Under it, the same call goes through.
		if _, err := c.UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn"), ZipFile: big[:2<<10]}); err != nil {
			t.Errorf("UpdateFunctionCode under the limit: %v", err)
		}
	})
	t.Run("ServiceException", func(t *testing.T) {
		m := newFakeManager()
		m.err = errors.New("raft: no leader")
		c := sdkClient(t, m, Options{})
		_, err := c.ListFunctions(ctx(t), &lambda.ListFunctionsInput{})
		var e *types.ServiceException
		if !errors.As(err, &e) || httpStatus(err) != 500 || aws.ToString(e.Type) != "Service" {
			t.Errorf("ListFunctions: %v (status %d), want ServiceException 500", err, httpStatus(err))
		}
	})
	t.Run("without a Manager", func(t *testing.T) {
		c := sdkClient(t, &fakeInvoker{}, Options{})
		_, err := c.ListFunctions(ctx(t), &lambda.ListFunctionsInput{})
		var ae interface{ ErrorCode() string }
		if !errors.As(err, &ae) || ae.ErrorCode() != unknownOperation || httpStatus(err) != 404 {
			t.Errorf("ListFunctions without a Manager: %v (status %d), want UnknownOperationException 404", err, httpStatus(err))
		}
	})
}

// A zip at Lambda's 50 MB limit fits under the default body limit.
func TestSDKCreateFunctionFiftyMegabytes(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 67 MB")
	}
	m := newFakeManager()
	c := sdkClient(t, m, Options{})
	zip := make([]byte, 50<<20)
	for i := range zip {
		zip[i] = byte(i * 7)
	}
	out, err := c.CreateFunction(ctx(t), &lambda.CreateFunctionInput{FunctionName: aws.String("big"), Role: aws.String("r"),
		Code: &types.FunctionCode{ZipFile: zip}})
	if err != nil {
		t.Fatal(err)
	}
	if out.CodeSize != 50<<20 || aws.ToString(out.CodeSha256) != codeSha256(digest(zip)) || len(m.lastZip) != len(zip) {
		t.Errorf("CodeSize %d CodeSha256 %q", out.CodeSize, aws.ToString(out.CodeSha256))
	}
	if n := base64.StdEncoding.EncodedLen(len(zip)); n > DefaultMaxCodeRequest-1024 {
		t.Errorf("50 MB of base64 is %d bytes, too close to the %d limit", n, DefaultMaxCodeRequest)
	}
}
