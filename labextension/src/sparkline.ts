/** Small inline SVG charts: a few lines over the last minutes, no library. */

const SVG = 'http://www.w3.org/2000/svg';

export interface ILine {
  values: (number | null)[];
  className: string; // colours come from the stylesheet
}

/**
 * A sparkline of `lines` sharing one x axis (`times`) and one y scale from 0 (or `max`).
 * Gaps (null) break a line. The last point of each line gets a dot.
 */
export function sparkline(
  times: number[],
  lines: ILine[],
  options: { width?: number; height?: number; max?: number; label?: string } = {}
): SVGSVGElement {
  const width = options.width ?? 120;
  const height = options.height ?? 28;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'jf-spark');
  svg.setAttribute('role', 'img');
  if (options.label) {
    svg.setAttribute('aria-label', options.label);
  }
  const known = lines.flatMap(line => line.values.filter((v): v is number => v !== null));
  const top = options.max ?? Math.max(1e-9, ...known) * 1.1;
  const first = times.length ? times[0] : 0;
  const span = times.length > 1 ? times[times.length - 1] - first : 1;
  const x = (t: number): number => 1 + ((t - first) / (span || 1)) * (width - 4);
  const y = (v: number): number => height - 2 - (Math.min(v, top) / top) * (height - 4);
  const base = document.createElementNS(SVG, 'line');
  base.setAttribute('x1', '0');
  base.setAttribute('x2', String(width));
  base.setAttribute('y1', String(height - 1.5));
  base.setAttribute('y2', String(height - 1.5));
  base.setAttribute('class', 'jf-spark-base');
  svg.appendChild(base);
  for (const line of lines) {
    let path = '';
    let last: [number, number] | null = null;
    line.values.forEach((value, index) => {
      if (value === null || index >= times.length) {
        last = null;
        return;
      }
      const point: [number, number] = [x(times[index]), y(value)];
      path += `${last ? 'L' : 'M'}${point[0].toFixed(1)},${point[1].toFixed(1)}`;
      last = point;
    });
    if (!path) {
      continue;
    }
    const element = document.createElementNS(SVG, 'path');
    element.setAttribute('d', path);
    element.setAttribute('class', `jf-spark-line ${line.className}`);
    svg.appendChild(element);
    const end = [...line.values.keys()]
      .reverse()
      .find(index => line.values[index] !== null && index < times.length);
    if (end !== undefined) {
      const dot = document.createElementNS(SVG, 'circle');
      dot.setAttribute('cx', x(times[end]).toFixed(1));
      dot.setAttribute('cy', y(line.values[end] as number).toFixed(1));
      dot.setAttribute('r', '1.8');
      dot.setAttribute('class', `jf-spark-dot ${line.className}`);
      svg.appendChild(dot);
    }
  }
  return svg;
}
