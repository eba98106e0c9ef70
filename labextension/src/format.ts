/** How times, durations, rates, sizes and paths are written (as the kernel writes them). */

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !isFinite(seconds)) {
    return '-';
  }
  const total = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  if (hours) {
    return `${hours}h ${two(minutes)}m ${two(secs)}s`;
  }
  return minutes ? `${minutes}m ${two(secs)}s` : `${secs}s`;
}

export function formatTime(millis: number | null | undefined): string {
  if (!millis) {
    return '-';
  }
  return new Date(millis).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false
  });
}

export function formatClock(millis: number | null | undefined): string {
  if (!millis) {
    return '-';
  }
  return new Date(millis).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    hour12: false
  });
}

export function formatRate(perSecond: number | null | undefined): string {
  if (perSecond === null || perSecond === undefined) {
    return '-';
  }
  if (perSecond >= 1e6) {
    return `${(perSecond / 1e6).toFixed(1)}M/s`;
  }
  if (perSecond >= 1e4) {
    return `${(perSecond / 1e3).toFixed(0)}k/s`;
  }
  if (perSecond >= 1e3) {
    return `${(perSecond / 1e3).toFixed(1)}k/s`;
  }
  return perSecond >= 10 ? `${perSecond.toFixed(0)}/s` : `${perSecond.toFixed(1)}/s`;
}

export function formatBytes(size: number | null | undefined): string {
  if (size === null || size === undefined) {
    return '-';
  }
  let value = size;
  for (const unit of ['B', 'KB', 'MB', 'GB']) {
    if (value < 1024 || unit === 'GB') {
      return unit === 'B' ? `${value.toFixed(0)} B` : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1024;
  }
  return `${value.toFixed(1)} GB`;
}

export function formatMillis(millis: number | null | undefined): string {
  if (millis === null || millis === undefined) {
    return '-';
  }
  if (millis < 1000) {
    return `${millis.toFixed(0)} ms`;
  }
  if (millis < 60000) {
    return `${(millis / 1000).toFixed(1)} s`;
  }
  return formatDuration(millis / 1000);
}

export function formatShare(share: number | null | undefined): string {
  return share === null || share === undefined ? '-' : `${Math.round(share * 100)}%`;
}

/** A long path shortened in the middle, so that its `chk-N` / `savepoint-...` end shows. */
export function shortenMiddle(text: string, limit = 48): string {
  if (text.length <= limit) {
    return text;
  }
  const tail = Math.ceil((limit - 1) * 0.6);
  return text.slice(0, limit - 1 - tail) + '\u2026' + text.slice(text.length - tail);
}
