/**
 * Running a step check (`<Check>`, src/components/Check.astro) against the lab's current
 * session (the lab server's `POST /api/v1/sessions/:id/checks/:check`, or the in-browser VM
 * judged in the page), then pass or fail with the message and the lab's hint in the
 * check's status region. Loaded with the
 * lab controller (LabController.check starts the lab first if needed).
 */
import type { CheckResult, LabApiError } from '../lab-api.ts';
import { setMessage } from '../lab-health.ts';
import { recordPass, renderProgress } from './check-progress.ts';

type Shown =
  | { kind: 'pending'; text: string }
  | { kind: 'error'; text: string }
  | { kind: 'result'; result: CheckResult };

/** Puts a state or a result into the check's status region (role=status: read once, politely). */
export function showCheck(el: HTMLElement, shown: Shown): void {
  const out = el.querySelector<HTMLElement>('[data-check-result]');
  if (!out) return;
  out.hidden = false;
  if (shown.kind !== 'result') {
    out.dataset.kind = shown.kind;
    const p = document.createElement('p');
    setMessage(p, shown.text);
    out.replaceChildren(p);
    return;
  }
  const r = shown.result;
  out.dataset.kind = r.passed ? 'pass' : 'fail';
  const verdict = document.createElement('p');
  verdict.className = 'check__verdict';
  const icon = document.createElement('span');
  icon.setAttribute('aria-hidden', 'true');
  icon.textContent = r.passed ? '✓ ' : '✗ ';
  verdict.append(icon, r.passed ? 'Passed. ' : 'Not yet. ');
  const message = document.createElement('span');
  setMessage(message, r.message);
  verdict.append(message);
  out.replaceChildren(verdict);
  if (!r.passed && r.hint) {
    const hint = document.createElement('p');
    hint.className = 'check__hint';
    const label = document.createElement('strong');
    label.textContent = 'Hint: ';
    const text = document.createElement('span');
    setMessage(text, r.hint);
    hint.append(label, text);
    out.append(hint);
  }
}

/** Runs one check of the session's lab: by the lab server, or by the in-browser VM. */
export type CheckRunner = (check: string, answer: string | undefined) => Promise<CheckResult>;

/** Runs the check of `el` with `run`; the answer comes from its input, if it has one. */
export async function runStepCheck(run: CheckRunner, el: HTMLElement): Promise<CheckResult | undefined> {
  const lab = el.dataset.checkLab ?? '';
  const id = el.dataset.check ?? '';
  const input = el.querySelector<HTMLInputElement>('[data-check-answer]');
  const answer = input?.value.trim();
  if (input && !answer) {
    showCheck(el, { kind: 'error', text: 'Type your answer in the box first, then press Check.' });
    input.focus();
    return undefined;
  }
  // aria-disabled, not disabled: the button keeps keyboard focus while the check runs.
  const button = el.querySelector<HTMLButtonElement>('[data-check-run]');
  if (el.getAttribute('aria-busy') === 'true') return undefined;
  button?.setAttribute('aria-disabled', 'true');
  el.setAttribute('aria-busy', 'true');
  showCheck(el, { kind: 'pending', text: 'Checking in your sandbox…' });
  try {
    const result = await run(id, input ? answer : undefined);
    showCheck(el, { kind: 'result', result });
    if (result.passed) {
      recordPass(lab, id);
      el.dataset.passed = '';
      renderProgress();
    }
    return result;
  } catch (err) {
    const e = err as LabApiError;
    showCheck(el, {
      kind: 'error',
      text:
        e.status === 404 || e.status === 401 || e.status === 410
          ? 'The sandbox this check looked for has ended. Start the lab again, redo the step, then check.'
          : e.message || 'The check did not run. Try again in a moment.',
    });
    return undefined;
  } finally {
    button?.removeAttribute('aria-disabled');
    el.removeAttribute('aria-busy');
  }
}
