/**
 * The project GPU-hour quota hook. Usage is charged in the replicated state when a task's end (or loss)
 * is committed — GPUs × (end − start) — so every node agrees on it; the limit comes from a lookup the
 * projects area will provide (undefined = no limit). A project at or over its limit places no new work:
 * its queued jobs wait and new submissions are refused (QUOTA_EXHAUSTED).
 */

/** GPU-hours a project may use in all, or undefined for no limit. */
export type QuotaLookup = (project: string) => number | undefined

const MS_PER_HOUR = 3_600_000

/** A check for the placer and the submit path: why `project` may not place more, or undefined. */
export function quotaCheck(
  limitGpuHours: QuotaLookup,
  usageGpuMs: (project: string) => number,
): (project: string) => string | undefined {
  return (project) => {
    const limit = limitGpuHours(project)
    if (limit === undefined) return undefined
    const used = usageGpuMs(project) / MS_PER_HOUR
    if (used < limit) return undefined
    return `project ${project} used ${used.toFixed(2)} of its ${limit} GPU-hours`
  }
}
