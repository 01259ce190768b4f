// A KALE farmer driven by the official JavaScript SDK (@stellar/stellar-sdk), the way a
// pool would: a pooler account submits and pays, the farmer only signs its auth entry.
//
// Usage: node farmer.mjs RPC_URL PASSPHRASE FARM_CONTRACT POOLER_SECRET FARMER_SECRET KALE_ISSUER
// Reads one JSON command per line on stdin, answers one JSON line per command on stdout:
//   {"op": "plant", "amount": "..."}  {"op": "work", "hash": "<hex>", "nonce": "..."}
//   {"op": "harvest", "index": n}     {"op": "read", "startLedger": n}   {"op": "exit"}
// Everything goes through the SDK's own clients: contract.Client.from(farm) for the calls
// (its spec read from the farm's code entry), rpc.Server for the reads.

import readline from "node:readline";
import { Asset, Keypair, contract, rpc, scValToNative, xdr } from "@stellar/stellar-sdk";

const [rpcUrl, passphrase, farmId, poolerSecret, farmerSecret, kaleIssuer] = process.argv.slice(2);
const pooler = Keypair.fromSecret(poolerSecret);
const farmer = Keypair.fromSecret(farmerSecret);
const server = new rpc.Server(rpcUrl, { allowHttp: true });
const poolerSigner = contract.basicNodeSigner(pooler, passphrase);
const farmerSigner = contract.basicNodeSigner(farmer, passphrase);

const client = await contract.Client.from({
  contractId: farmId,
  networkPassphrase: passphrase,
  rpcUrl,
  allowHttp: true,
  publicKey: pooler.publicKey(),
  signTransaction: poolerSigner.signTransaction,
});

async function send(tx) {
  const sent = await tx.signAndSend();
  const response = sent.getTransactionResponse;
  return { hash: sent.sendTransactionResponse.hash, status: response.status, ledger: response.ledger };
}

async function plant({ amount }) {
  const tx = await client.plant({ farmer: farmer.publicKey(), amount: BigInt(amount) });
  const signers = tx.needsNonInvokerSigningBy();
  // the farmer signs its auth entry, with the SDK's default expiration (latest ledger + 100)
  await tx.signAuthEntries({ address: farmer.publicKey(), signAuthEntry: farmerSigner.signAuthEntry });
  await tx.simulate();
  return { signers, ...(await send(tx)) };
}

async function work({ hash, nonce }) {
  const tx = await client.work({ farmer: farmer.publicKey(), hash: Buffer.from(hash, "hex"), nonce: BigInt(nonce) });
  const sent = await tx.signAndSend();
  return { hash: sent.sendTransactionResponse.hash, status: sent.getTransactionResponse.status, gap: sent.result };
}

async function harvest({ index }) {
  const tx = await client.harvest({ farmer: farmer.publicKey(), index });
  const sent = await tx.signAndSend();
  return { hash: sent.sendTransactionResponse.hash, status: sent.getTransactionResponse.status, reward: String(sent.result) };
}

function topics(event) {
  return event.topic.map((t) => {
    const native = scValToNative(t);
    return typeof native === "string" ? native : String(native);
  });
}

async function read({ startLedger }) {
  const latest = await server.getLatestLedger(); // parses headerXdr and metadataXdr
  const meta = latest.metadataXdr.v2();
  const ledgers = await server.getLedgers({ startLedger, pagination: { limit: 200 } });
  const transactions = await server.getTransactions({ startLedger, pagination: { limit: 200 } });
  const events = await server.getEvents({ startLedger, endLedger: latest.sequence + 1, filters: [], limit: 1000 });
  const balance = await server.getAssetBalance(farmer.publicKey(), new Asset("KALE", kaleIssuer), passphrase);
  const wasm = await server.getContractWasmByContractId(farmId);
  return {
    latest: {
      sequence: latest.sequence,
      id: latest.id,
      protocolVersion: latest.protocolVersion,
      headerSequence: latest.headerXdr.ledgerSeq(),
      metaSequence: meta.ledgerHeader().header().ledgerSeq(),
      metaHash: meta.ledgerHeader().hash().toString("hex"),
      metaTransactions: meta.txProcessing().length,
    },
    ledgers: ledgers.ledgers.map((l) => ({
      sequence: l.sequence,
      hash: l.hash,
      headerHash: l.headerXdr.hash().toString("hex"),
      metaTransactions: l.metadataXdr.v2().txProcessing().length,
    })),
    ledgersCursor: ledgers.cursor,
    transactions: transactions.transactions.map((t) => ({
      hash: t.txHash,
      status: t.status,
      ledger: t.ledger,
      applicationOrder: t.applicationOrder,
      feeCharged: t.resultXdr.feeCharged().toString(),
      feeEvents: t.events.transactionEventsXdr.length,
      returnValue: t.returnValue === undefined ? null : String(scValToNative(t.returnValue)),
    })),
    events: events.events.map((e) => ({
      id: e.id,
      ledger: e.ledger,
      contractId: e.contractId ? e.contractId.toString() : null,
      txHash: e.txHash,
      topics: topics(e),
      value: String(scValToNative(e.value)),
    })),
    balance: { amount: balance.balanceEntry ? String(balance.balanceEntry.amount) : null, latestLedger: balance.latestLedger },
    wasm: { valid: WebAssembly.validate(wasm), functions: client.spec.funcs().map((f) => f.name().toString()) },
    errors: client.spec.errorCases().map((c) => [c.name().toString(), c.value()]),
  };
}

const ops = { plant, work, harvest, read };
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const command = JSON.parse(line);
  if (command.op === "exit") break;
  let reply;
  try {
    reply = { ok: true, ...(await ops[command.op](command)) };
  } catch (err) {
    reply = { ok: false, error: String(err && err.stack ? err.stack : err) };
  }
  process.stdout.write(JSON.stringify(reply, (_, v) => (typeof v === "bigint" ? v.toString() : v)) + "\n");
}
process.exit(0);
