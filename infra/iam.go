package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"
)

// Least privilege. Each function's role gets exactly the actions its code
// calls, on exactly its resources:
//
//   - the state table: the DynamoDB operations below (a TransactWriteItems
//     of Update items needs only dynamodb:UpdateItem);
//   - its queues: the SQS event source's consumer actions on the queue it
//     reads (added by the CDK with the mapping), and sqs:SendMessage for
//     orchestrate on the jobs queue;
//   - its own log group: logs:CreateLogStream and logs:PutLogEvents, instead
//     of the AWSLambdaBasicExecutionRole managed policy (which allows them
//     on every log group);
//   - no secrets: provider keys are resolved by CloudFormation at deploy
//     time (secretEnv), so no function reads Secrets Manager or SSM.
//
// A feature that makes a function call a new DynamoDB operation adds it
// here; infra/operations_test.go asserts these lists exactly, and a missing
// action is an AccessDenied on AWS (the emulators do not enforce IAM).
var TableActions = map[string][]string{
	// API keys and tenants (GetItem), quota reservations and settlement
	// (UpdateItem, in transactions too), breakers (GetItem, UpdateItem, and
	// Query over the failure buckets), the response cache (GetItem, PutItem,
	// and Query for the parts of a split entry), shadow records (PutItem) and
	// stored Responses API responses (GetItem, PutItem, and DeleteItem for
	// DELETE /v1/responses/{id} and the parts of a large one).
	"stream": {"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"},
	// The same for chat, plus tasks: created with PutItem (alone, or with
	// their idempotency record in a transaction of Puts), large results in
	// blob items (PutItem), read with GetItem, leases and states moved with
	// UpdateItem.
	"orchestrate": {"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"},
	// Breakers as above, tokens-per-minute budgets (UpdateItem), the
	// idempotency ledger (BatchGetItem to look up, a conditional PutItem per
	// new mark) and the DynamoDB vector sink (BatchWriteItem, BatchGetItem).
	// S3 Vectors permissions are granted on the vector bucket (sluice.go).
	"embed": {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"},
}

// newRole is a function's execution role: assumable by Lambda, allowed to
// write its own log group and nothing else until grants add to it.
func newRole(stack awscdk.Stack, id string, logs awslogs.LogGroup) awsiam.Role {
	role := awsiam.NewRole(stack, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("sluice " + id + " function: least privilege, see infra/iam.go"),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: jsii.Strings(*logs.LogGroupArn()),
	}))
	return role
}

// grantState gives each function its table actions.
func grantState(out *SluiceStack) {
	for name, fn := range map[string]interface {
		awsiam.IGrantable
	}{"stream": out.Stream, "embed": out.Embed, "orchestrate": out.Orchestrate} {
		if acts := TableActions[name]; len(acts) > 0 {
			out.Table.Grant(fn, *jsii.Strings(acts...)...)
		}
	}
}
