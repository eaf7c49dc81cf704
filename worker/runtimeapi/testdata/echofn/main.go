// Command echofn is a tiny Lambda function used by the runtimeapi
// integration test to drive the real aws-lambda-go runtime client.
//
// The event is a JSON object; without any control field it is echoed back.
//
//	{"error": "msg"}     return errors.New(msg)   (errorType "errorString")
//	{"panic": "msg"}     panic(msg)               (errorType "string"; process exits)
//	{"sleep_ms": 500}    sleep, then echo
//	{"context": true}    return what the runtime client parsed from the headers
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Error   string `json:"error"`
	Panic   string `json:"panic"`
	SleepMS int    `json:"sleep_ms"`
	Context bool   `json:"context"`
}

// contextInfo mirrors the invocation headers as aws-lambda-go decoded them.
type contextInfo struct {
	RequestID       string            `json:"request_id"`
	FunctionARN     string            `json:"function_arn"`
	DeadlineMS      int64             `json:"deadline_ms"`
	TraceID         string            `json:"trace_id"`
	ClientCustom    map[string]string `json:"client_custom"`
	CognitoIdentity string            `json:"cognito_identity_id"`
	PID             int               `json:"pid"`
}

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	if ev.SleepMS > 0 {
		time.Sleep(time.Duration(ev.SleepMS) * time.Millisecond)
	}
	switch {
	case ev.Panic != "":
		panic(ev.Panic)
	case ev.Error != "":
		return nil, errors.New(ev.Error)
	case ev.Context:
		lc, _ := lambdacontext.FromContext(ctx)
		deadline, _ := ctx.Deadline()
		traceID, _ := ctx.Value("x-amzn-trace-id").(string)
		return contextInfo{
			RequestID:       lc.AwsRequestID,
			FunctionARN:     lc.InvokedFunctionArn,
			DeadlineMS:      deadline.UnixMilli(),
			TraceID:         traceID,
			ClientCustom:    lc.ClientContext.Custom,
			CognitoIdentity: lc.Identity.CognitoIdentityID,
			PID:             os.Getpid(),
		}, nil
	}
	return raw, nil
}

func main() {
	lambda.Start(handle)
}
