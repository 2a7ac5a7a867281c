package main

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
)

// Bedrock models are called with the functions' own roles (the AWS default
// credential chain), so a deployment whose configuration routes to Bedrock
// needs bedrock:InvokeModel* on those models, and nothing else of Bedrock.
// The models come from the configuration the stack deploys (configFile):
// chat targets for stream and orchestrate (ConverseStream is
// InvokeModelWithResponseStream), embedding targets for all three
// (/v1/embeddings on the HTTP functions, the embed function's batches).
// A direct route to a Bedrock model the configuration does not name is
// refused by IAM, which is the point of least privilege.

// bedrockModels lists the Bedrock model ids a sluice config (JSON) routes
// to, for chat and for embeddings, sorted.
func bedrockModels(configJSON string) (chat, embed []string) {
	if configJSON == "" {
		return nil, nil
	}
	var c struct {
		Providers map[string]struct {
			Type string `json:"type"`
		} `json:"providers"`
		Models     map[string]struct{ Targets []json.RawMessage } `json:"models"`
		Embeddings struct {
			Models map[string]struct{ Targets []json.RawMessage } `json:"models"`
		} `json:"embeddings"`
	}
	if json.Unmarshal([]byte(configJSON), &c) != nil {
		return nil, nil // the functions refuse such a config at start
	}
	isBedrock := func(p string) bool { return c.Providers[p].Type == "bedrock" }
	collect := func(targets []json.RawMessage, into *[]string) {
		for _, raw := range targets {
			var p, m string
			var s string
			if json.Unmarshal(raw, &s) == nil {
				p, m, _ = strings.Cut(s, "/")
			} else {
				var t struct{ Provider, Model string }
				_ = json.Unmarshal(raw, &t)
				p, m = t.Provider, t.Model
			}
			if isBedrock(p) && m != "" && !slices.Contains(*into, m) {
				*into = append(*into, m)
			}
		}
	}
	for _, m := range c.Models {
		collect(m.Targets, &chat)
	}
	for _, m := range c.Embeddings.Models {
		collect(m.Targets, &embed)
	}
	slices.Sort(chat)
	slices.Sort(embed)
	return chat, embed
}

// geoPrefixes start the ids of cross-region inference profiles.
var geoPrefixes = []string{"us.", "eu.", "apac.", "us-gov.", "ca.", "jp.", "au.", "global."}

// bedrockResources are the ARNs that invoking model id needs: the
// foundation model in any region (a cross-region inference profile routes
// to several), and the profile itself when id names one.
func bedrockResources(stack awscdk.Stack, id string) []string {
	if strings.HasPrefix(id, "arn:") {
		return []string{id} // a provisioned model or profile named by ARN
	}
	partition, account := *stack.Partition(), *stack.Account()
	base := id
	var out []string
	for _, p := range geoPrefixes {
		if strings.HasPrefix(id, p) {
			base = strings.TrimPrefix(id, p)
			out = append(out, "arn:"+partition+":bedrock:*:"+account+":inference-profile/"+id)
			break
		}
	}
	return append(out, "arn:"+partition+":bedrock:*::foundation-model/"+base)
}

// grantBedrock gives each function InvokeModel on the Bedrock models its
// configuration routes to.
func grantBedrock(out *SluiceStack, configJSON string) {
	chat, embed := bedrockModels(configJSON)
	grant := func(fn awsiam.IGrantable, actions []string, models []string) {
		if len(models) == 0 {
			return
		}
		var resources []string
		for _, m := range models {
			resources = append(resources, bedrockResources(out.Stack, m)...)
		}
		fn.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings(actions...),
			Resources: jsii.Strings(resources...),
		}))
	}
	stream := []string{"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
	grant(out.Stream, stream, chat)
	grant(out.Orchestrate, stream, chat)
	for _, fn := range []awsiam.IGrantable{out.Stream, out.Orchestrate, out.Embed} {
		grant(fn, []string{"bedrock:InvokeModel"}, embed)
	}
}
