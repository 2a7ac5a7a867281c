package stackemu

// The issue whose branch turns the pending test on (see the PENDING skip).
const pendingIssue9 = "issue-9 (functions/embed on SQS: documents in, vectors out)"

// documentsInVectorsOutEnabled turns on TestDocumentsInVectorsOut. PENDING
// issue-9: set it to true when the embedding engine lands.
const documentsInVectorsOutEnabled = true
