// Command tote-lambda is tote as an AWS Lambda function for the
// provided.al2023 runtime (built as bootstrap: make lambda). One binary
// serves the three functions; TOTE_STAGE says which stage it runs. The
// handler is package awslambda.
package main

import (
	"os"
	"runtime/debug"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/terrifictotes/tote/awslambda"
)

func main() {
	if limit := awslambda.MemoryLimit(os.Getenv); limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	lambda.Start(awslambda.New(awslambda.Env{}).Invoke)
}
