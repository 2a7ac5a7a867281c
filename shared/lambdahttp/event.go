package lambdahttp

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// UnknownEventError is returned for an event that is not a Function URL
// request. It fails the invocation on purpose: answering it with an HTTP
// envelope would be a success to whatever sent it (an SQS event source
// would delete the messages).
type UnknownEventError struct {
	Function string
	Keys     []string // the event's top-level keys, to tell what it was
	Reason   string
}

func (e *UnknownEventError) Error() string {
	return fmt.Sprintf("sluice %s: not a Function URL request (%s); top-level keys: [%s]",
		e.Function, e.Reason, strings.Join(e.Keys, " "))
}

// DecodeRequest reads a Function URL request (payload format 2.0) and
// refuses anything else: another event source's shape, or JSON that is not
// an object. function names the function in the error.
func DecodeRequest(function string, raw json.RawMessage) (*events.LambdaFunctionURLRequest, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, &UnknownEventError{Function: function, Reason: "the event is not a JSON object: " + err.Error()}
	}
	keys := slices.Sorted(maps.Keys(top))
	var req events.LambdaFunctionURLRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, &UnknownEventError{Function: function, Keys: keys, Reason: err.Error()}
	}
	switch {
	case req.Version != "2.0":
		return nil, &UnknownEventError{Function: function, Keys: keys, Reason: fmt.Sprintf("version is %q, want \"2.0\"", req.Version)}
	case req.RequestContext.HTTP.Method == "":
		return nil, &UnknownEventError{Function: function, Keys: keys, Reason: "requestContext.http.method is missing"}
	case !strings.HasPrefix(req.RawPath, "/"):
		return nil, &UnknownEventError{Function: function, Keys: keys, Reason: "rawPath is missing"}
	}
	return &req, nil
}
