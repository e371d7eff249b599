/**
 * Where a pool's leases are kept beyond this process: the seam between the pure pool
 * (leases.ts) and what makes it durable. Two ledgers exist: the lease file (lease-file.ts,
 * one appliance per pool) and etcd (etcd-leases.ts, a pool several appliances share).
 *
 * The policy's contract is the same for both: an ACK leaves only after commit() resolves.
 * A shared ledger adds claim(): every change is a compare-and-swap, so an offer or a binding
 * can lose to another appliance, and the policy must know before it answers.
 */

export interface LeaseLedgerOpened {
  loaded: number;
  outside: number;
  /** Problems found and worked around, each with where it was found. */
  problems: string[];
}

export interface LeaseLedger {
  /** Where the leases live, for log lines: a file path or a key prefix. */
  readonly where: string;
  /** Loads what is kept into the pool; the pool answers nothing before this resolves. */
  open(): Promise<LeaseLedgerOpened>;
  /** Resolves once every pool change made before the call is kept; rejects when it could not be. */
  commit(): Promise<void>;
  close(): Promise<void>;
  /** Set when other appliances hand out the same pool. */
  readonly shared?: SharedLedger | undefined;
}

export interface SharedLedger {
  /**
   * Makes the pool's record at `ip` (an offer or a binding just made in memory) the one every
   * appliance sees, with the pool's other pending changes. True once it is; false when
   * another appliance changed the address first: the pool then holds theirs, and nothing
   * may be sent for ours. Rejects when the store cannot be reached.
   */
  claim(ip: string): Promise<boolean>;
}
