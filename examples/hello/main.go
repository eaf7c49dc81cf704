// Command hello is the example gust function: a plain aws-lambda-go handler,
// built static (CGO_ENABLED=0 -tags lambda.norpc) as the `provided`
// runtime's bootstrap. It runs unchanged on AWS Lambda.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Event is what hello expects.
type Event struct {
	Name string `json:"name"`
}

// Response is what hello returns.
type Response struct {
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	// Invocations counts calls served by this process: 1 on a cold start,
	// more when the sandbox is reused warm.
	Invocations int `json:"invocations"`
}

var invocations int

func handle(ctx context.Context, e Event) (Response, error) {
	invocations++
	name := e.Name
	if name == "" {
		name = "world"
	}
	lc, _ := lambdacontext.FromContext(ctx)
	var id string
	if lc != nil {
		id = lc.AwsRequestID
	}
	fmt.Fprintf(os.Stderr, "greeting %s\n", name)
	return Response{Message: "hello, " + name, RequestID: id, Invocations: invocations}, nil
}

func main() {
	lambda.Start(handle)
}
