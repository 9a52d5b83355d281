/**
 * Key layout of the metadata tables. Each table is one ordered key space of strings; composite keys
 * are built from fixed-width parts so that string order is the order of the parts:
 *
 * | table       | key                                   | value        |
 * | ----------- | ------------------------------------- | ------------ |
 * | `inode`     | `<parentId be64 hex><name>`           | Inode        |
 * | `lease`     | `<inodeId be64 hex>`                  | Lease        |
 * | `changelog` | `<raftIndex be64 hex><seq be16 hex>`  | ChangeEvent  |
 * | `setting`   | `<name>`                              | Setting      |
 * | `counter`   | `<name>`                              | Counter      |
 *
 * `inode` is keyed as HopsFS keys its inodes — (parent id, name) — so a directory's children are one
 * contiguous range and a listing is one range scan; a later split of the namespace across Raft groups
 * by parent id is a routing change.
 */

/** 16 lowercase hex digits: ids below 2^53 sort numerically as strings. */
export function be64(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`be64: ${n} is not a non-negative safe integer`)
  return n.toString(16).padStart(16, '0')
}

export function fromBe64(s: string): number {
  return Number.parseInt(s.slice(0, 16), 16)
}

/** 4 lowercase hex digits. */
export function be16(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new Error(`be16: ${n} out of range`)
  return n.toString(16).padStart(4, '0')
}

/** Key of an inode in the `inode` table. */
export function inodeKey(parentId: number, name: string): string {
  return be64(parentId) + name
}

/** [start, end) of a directory's children in the `inode` table. */
export function childrenRange(parentId: number): [string, string] {
  return [be64(parentId), be64(parentId + 1)]
}
