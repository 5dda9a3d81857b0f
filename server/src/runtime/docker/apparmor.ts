/**
 * AppArmor for lab hosts (issue 11). Engines on AppArmor hosts (Ubuntu, Debian 13, ...)
 * give every container Docker's `docker-default`, whose `deny mount` stops the nested
 * container from starting ("cannot change root filesystem propagation"). Instead of
 * running lab hosts unconfined there, we ship our own profile,
 * labs/apparmor/containerlabs-labhost: docker-default's rules plus only the mounts the
 * nested container and the lessons need.
 *
 * The engine may be remote (DOCKER_HOST), so whether its host has the profile loaded is
 * found out the only way that works from here: at start, a throwaway lab host is created
 * with `apparmor=<profile>` and started (runc refuses a profile that is not loaded), and
 * it prints /proc/self/attr/current (docker-runtime.ts, checkApparmor). `decideApparmor`
 * then says what the server does with the answer, per access mode.
 */

/** Our profile's name (the `profile` line of labs/apparmor/containerlabs-labhost). */
export const LAB_HOST_PROFILE = 'containerlabs-labhost';
/** The profile's file, relative to the checkout (and to /app in the server image). */
export const PROFILE_FILE = 'labs/apparmor/containerlabs-labhost';
/** How an operator loads it on the engine's host (scripts/setup.sh does it as root). */
export const LOAD_PROFILE_COMMAND = `sudo apparmor_parser -r ${PROFILE_FILE}`;

/** What the start-up check found. */
export interface ApparmorCheck {
  /** The engine applies AppArmor profiles to its containers (SecurityOptions). */
  engineApparmor: boolean;
  /** The profile lab hosts would get (CL_APPARMOR_PROFILE resolved): ours, the operator's, `unconfined`. */
  profile?: string;
  /** The engine ran a lab host under it (true), refused it as not loaded (false), or the check could not tell. */
  loaded?: boolean;
  /** /proc/self/attr/current of that lab host, e.g. `containerlabs-labhost (enforce)`. */
  confinement?: string;
  /** What the engine said, when it refused or the check failed. */
  detail?: string;
}

export type ApparmorDecision =
  /** Start; lab hosts get `profile` (undefined: no AppArmor option). `note` goes to the log. */
  | { action: 'run'; profile: string | undefined; warn: boolean; note: string }
  /** Do not start: `message` says why and how to fix it. */
  | { action: 'refuse'; message: string };

function howToLoad(profile: string): string {
  return profile === LAB_HOST_PROFILE
    ? `Load it on the engine's host: ${LOAD_PROFILE_COMMAND} (and copy that file to /etc/apparmor.d/ so it is loaded at every boot)`
    : `Load your profile ${profile} on the engine's host (apparmor_parser -r <its file>), or leave CL_APPARMOR_PROFILE unset to use ours (${LOAD_PROFILE_COMMAND})`;
}

/**
 * `open` and `code` modes serve readers the operator does not control: where the engine
 * applies AppArmor, lab hosts run confined by an enforcing profile or the server does
 * not start. `local` mode is the user's own machine: it starts anyway and says what it
 * does (unconfined lab hosts) and how to change that.
 */
export function decideApparmor(mode: 'open' | 'code' | 'local', check: ApparmorCheck): ApparmorDecision {
  if (!check.engineApparmor) {
    return {
      action: 'run',
      profile: undefined,
      warn: false,
      note: 'the engine applies no AppArmor (no AppArmor on its host, or a rootless engine): lab hosts are confined by seccomp, no capabilities, no-new-privileges and user namespaces',
    };
  }
  const profile = check.profile ?? LAB_HOST_PROFILE;
  const strict = mode !== 'local';
  if (profile === 'unconfined') {
    if (strict) {
      return {
        action: 'refuse',
        message: `CL_APPARMOR_PROFILE=unconfined is refused in ${mode} mode: the engine applies AppArmor and lab hosts would run without it. ${howToLoad(LAB_HOST_PROFILE)}, and leave CL_APPARMOR_PROFILE unset.`,
      };
    }
    return {
      action: 'run',
      profile,
      warn: true,
      note: `lab hosts run with apparmor=unconfined (CL_APPARMOR_PROFILE, local mode): seccomp, no capabilities and no-new-privileges still apply`,
    };
  }
  if (check.loaded === false) {
    const why = `The engine applies AppArmor, and the lab hosts' profile ${profile} is not loaded on its host (the engine refused to start a lab host with it${check.detail ? `: ${check.detail}` : ''}).`;
    if (strict) {
      return {
        action: 'refuse',
        message: `Not starting in ${mode} mode: ${why} ${howToLoad(profile)}, then start the server again.`,
      };
    }
    return {
      action: 'run',
      profile: 'unconfined',
      warn: true,
      note: `${why} Local mode runs lab hosts unconfined on your own machine (seccomp, no capabilities and no-new-privileges still apply). ${howToLoad(profile)} to confine them.`,
    };
  }
  if (check.loaded === true) {
    const confinement = check.confinement ?? `${profile} (enforce)`;
    if (!confinement.endsWith('(enforce)')) {
      const note = `the AppArmor profile ${profile} is loaded but not enforcing (${confinement}): it only logs what it would refuse.`;
      if (strict) {
        return {
          action: 'refuse',
          message: `Not starting in ${mode} mode: ${note} Load it in enforce mode: ${profile === LAB_HOST_PROFILE ? LOAD_PROFILE_COMMAND : `apparmor_parser -r <its file>`} (not aa-complain).`,
        };
      }
      return { action: 'run', profile, warn: true, note: `${note} Local mode starts anyway.` };
    }
    return {
      action: 'run',
      profile,
      warn: false,
      note: `lab hosts run under the AppArmor profile ${confinement}`,
    };
  }
  return {
    action: 'run',
    profile,
    warn: true,
    note: `could not check that the AppArmor profile ${profile} is loaded (${check.detail ?? 'no answer'}); lab hosts will not start until it is. ${howToLoad(profile)}.`,
  };
}
