/**
 * The reader's lab preferences kept in localStorage (shared by the page's first-load
 * script and the lazily loaded controller). Storage may be blocked (private mode): the
 * preference then lasts for this page only.
 */
const SCREEN_READER_KEY = 'container-labs:screen-reader';

export function screenReaderPreferred(): boolean {
  try {
    return localStorage.getItem(SCREEN_READER_KEY) === '1';
  } catch {
    return false;
  }
}

export function rememberScreenReader(on: boolean): void {
  try {
    localStorage.setItem(SCREEN_READER_KEY, on ? '1' : '0');
  } catch {
    // blocked storage: the toggle still works for this page
  }
}
