/**
 * A Map that keeps at most `capacity` entries: `set` makes a key the newest, and past the
 * capacity the oldest is evicted (and reported). Iteration runs oldest first. What the
 * appliance remembers per machine or per address lives in one of these, so a rack booting
 * in a loop, or a stream of new MACs, cannot grow the process.
 *
 * The order is a doubly linked list beside the Map, not the Map's own insertion order: making
 * a key newest by delete + set leaves a deleted slot in V8's table, and finding the oldest
 * with `keys().next()` then walks every such slot left since the last rehash (measured:
 * ~115 µs per DHCP packet with a new MAC each, bench/dhcp/proxy.md). Here a touch relinks
 * two nodes and an eviction unlinks the tail, whatever came before.
 */
interface Node<K, V> {
  key: K;
  value: V;
  /** Towards the oldest. */
  older: Node<K, V> | undefined;
  /** Towards the newest. */
  newer: Node<K, V> | undefined;
}

export class LruMap<K, V> {
  private readonly map = new Map<K, Node<K, V>>();
  private oldest: Node<K, V> | undefined;
  private newest: Node<K, V> | undefined;

  constructor(
    readonly capacity: number,
    private readonly onEvict?: (key: K, value: V) => void,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.map.size;
  }

  /** The value, without making the key any newer. */
  get(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Stores the value as the newest entry, evicting the oldest when full. */
  set(key: K, value: V): this {
    const node = this.map.get(key);
    if (node) {
      node.value = value;
      this.makeNewest(node);
      return this;
    }
    if (this.map.size >= this.capacity) this.evictOldest();
    const added: Node<K, V> = { key, value, older: this.newest, newer: undefined };
    if (this.newest) this.newest.newer = added;
    else this.oldest = added;
    this.newest = added;
    this.map.set(key, added);
    return this;
  }

  /** The value, made the newest entry. */
  touch(key: K): V | undefined {
    const node = this.map.get(key);
    if (!node) return undefined;
    this.makeNewest(node);
    return node.value;
  }

  delete(key: K): boolean {
    const node = this.map.get(key);
    if (!node) return false;
    this.map.delete(key);
    this.unlink(node);
    return true;
  }

  clear(): void {
    this.map.clear();
    this.oldest = undefined;
    this.newest = undefined;
  }

  /** Oldest first. Deleting the entry being visited is allowed. */
  *entries(): IterableIterator<[K, V]> {
    for (let node = this.oldest; node; ) {
      const next = node.newer;
      yield [node.key, node.value];
      node = next;
    }
  }

  *values(): IterableIterator<V> {
    for (let node = this.oldest; node; ) {
      const next = node.newer;
      yield node.value;
      node = next;
    }
  }

  /** Forgets the oldest entry (reported like any eviction); false when empty. For bounds beyond the count of entries. */
  evictOldest(): boolean {
    const node = this.oldest;
    if (!node) return false;
    this.map.delete(node.key);
    this.unlink(node);
    this.onEvict?.(node.key, node.value);
    return true;
  }

  private unlink(node: Node<K, V>): void {
    if (node.older) node.older.newer = node.newer;
    else this.oldest = node.newer;
    if (node.newer) node.newer.older = node.older;
    else this.newest = node.older;
    node.older = undefined;
    node.newer = undefined;
  }

  private makeNewest(node: Node<K, V>): void {
    if (node === this.newest) return;
    this.unlink(node);
    node.older = this.newest;
    if (this.newest) this.newest.newer = node;
    else this.oldest = node;
    this.newest = node;
  }
}
