package metrics_test

import (
	"os"
	"time"

	"github.com/sluice-llm/sluice/shared/metrics"
)

func ExampleEMF() {
	clock := func() time.Time { return time.UnixMilli(1735689600000) }
	e := metrics.NewEMF(os.Stdout, "", metrics.WithClock(clock))
	e.Record(&metrics.Request{
		Route: "chat", Status: 503, ErrorKind: "unavailable",
		Requests: 1, Attempts: 2, Retries: 1, Duration: 1500 * time.Millisecond,
	})
	// Output:
	// {"_aws":{"Timestamp":1735689600000,"CloudWatchMetrics":[{"Namespace":"sluice","Dimensions":[["Route"],["Route","Provider"]],"Metrics":[{"Name":"Requests","Unit":"Count"},{"Name":"Attempts","Unit":"Count"},{"Name":"UpstreamCalls","Unit":"Count"},{"Name":"Retries","Unit":"Count"},{"Name":"Fallbacks","Unit":"Count"},{"Name":"Hedges","Unit":"Count"},{"Name":"Stitched","Unit":"Count"},{"Name":"MidStreamErrors","Unit":"Count"},{"Name":"Errors","Unit":"Count"},{"Name":"BreakerOpen","Unit":"Count"},{"Name":"QuotaRejections","Unit":"Count"},{"Name":"Duration","Unit":"Milliseconds"},{"Name":"PromptTokens","Unit":"Count"},{"Name":"CompletionTokens","Unit":"Count"},{"Name":"CostUSD","Unit":"None"}]}]},"Route":"chat","Provider":"none","Requests":1,"Attempts":2,"UpstreamCalls":0,"Retries":1,"Fallbacks":0,"Hedges":0,"Stitched":0,"MidStreamErrors":0,"Errors":1,"BreakerOpen":0,"QuotaRejections":0,"Duration":1500,"PromptTokens":0,"CompletionTokens":0,"CostUSD":0,"Model":"","Tenant":"","Status":503,"Stream":false,"ErrorKind":"unavailable"}
}
