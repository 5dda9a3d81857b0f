# /etc/bash.bashrc of a Container Labs image: read by every interactive bash, on the lab
# host (reader@labhost) and inside the nested container (root@box).
[ -z "${PS1-}" ] && return

shopt -s checkwinsize histappend
HISTSIZE=1000
HISTCONTROL=ignoredups

# Green for the reader on the lab host, yellow for root inside the nested container, so
# the two terminals never look alike.
if [ "$(id -u)" -eq 0 ]; then
  PS1='\[\e[1;33m\]\u@\h\[\e[0m\]:\[\e[1;34m\]\w\[\e[0m\]# '
else
  PS1='\[\e[1;32m\]\u@\h\[\e[0m\]:\[\e[1;34m\]\w\[\e[0m\]\$ '
fi
# Terminal title: who and where.
PS1="\[\e]0;\u@\h: \w\a\]$PS1"

alias ls='ls --color=auto'
alias ll='ls -l'
alias grep='grep --color=auto'
