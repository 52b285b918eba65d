# bash completion for jobctl(1).  Installed as
# $(BASHCOMPDIR)/jobctl, where bash-completion loads it on first use.
#
# Commands, global and per-command options, -S states, the command line of
# `submit` (completed as a command of its own), and, by asking the daemon
# with a one-second limit, queue names and job ids.  When the daemon cannot
# be reached, those last two complete to nothing.

# Ask the daemon (at the socket given with -s, if any) for something.
_jobctl_query()
{
	local sock=() i
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-s | --socket) sock=(-s "${words[i + 1]}") ;;
		--socket=*) sock=(-s "${words[i]#--socket=}") ;;
		-s?*) sock=(-s "${words[i]#-s}") ;;
		esac
	done
	timeout 1 "${words[0]}" "${sock[@]}" "$@" 2>/dev/null
}

# Queue names: the rows of `jobctl stats` between its header and (total).
_jobctl_queues()
{
	_jobctl_query stats | awk 'NR > 2 && $1 != "(total)" { print $1 }'
}

# Job ids from `jobctl list`, optionally only those in the given states.
_jobctl_ids()
{
	_jobctl_query list -n 200 |
	    awk -v states="$*" 'NR > 1 && (states == "" ||
		index(" " states " ", " " $3 " ")) { print $1 }'
}

_jobctl()
{
	local cur prev words cword split
	_init_completion -s || return

	local commands="submit get wait join cancel list logs stats pause
	    resume ping watch reload"
	local states="queued running succeeded failed timed_out canceled"

	# Find the command: the first word after the global options.
	local i cmd="" cmdi=0
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-s | --socket) ((i++)) ;;
		-*) ;;
		*)
			cmd=${words[i]}
			cmdi=$i
			break
			;;
		esac
	done

	if [[ -z $cmd ]]; then
		case $prev in
		-s | --socket)
			_filedir
			return
			;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '-s --socket --json -h --help
			    --version' -- "$cur"))
			[[ ${COMPREPLY-} == *= ]] && compopt -o nospace
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi

	# submit: once the job's command has started (after -- or at the first
	# word that is not an option or an option's argument), complete it as
	# a command line of its own.
	if [[ $cmd == submit ]]; then
		for ((i = cmdi + 1; i <= cword; i++)); do
			case ${words[i]} in
			--)
				if ((i < cword)); then
					_command_offset $((i + 1))
					return
				fi
				;;
			-[qptneC] | --queue | --priority | --timeout | --name | \
			    --env | --cwd)
				((i++))
				;;
			-*) ;;
			*)
				_command_offset $i
				return
				;;
			esac
		done
	fi

	case $cmd:$prev in
	*:-q | *:--queue)
		COMPREPLY=($(compgen -W "$(_jobctl_queues)" -- "$cur"))
		return
		;;
	list:-S | list:--state)
		COMPREPLY=($(compgen -W "$states" -- "$cur"))
		return
		;;
	submit:-C | submit:--cwd)
		_filedir -d
		return
		;;
	submit:-e | submit:--env)
		compopt -o nospace
		COMPREPLY=($(compgen -e -S = -- "$cur"))
		return
		;;
	submit:-[ptn] | submit:--priority | submit:--timeout | \
	    submit:--name | wait:-t | wait:--timeout | join:-t | \
	    join:--timeout | list:-n | list:--limit)
		# A number or a name of the user's choosing.
		return
		;;
	esac

	local opts=""
	case $cmd in
	submit)
		opts="-q --queue -p --priority -t --timeout -n --name -e --env
		    -C --cwd --nowait --wait --shell -h --help --"
		;;
	wait) opts="-t --timeout -h --help" ;;
	join) opts="-q --queue -t --timeout -h --help" ;;
	list) opts="-q --queue -S --state -n --limit -h --help" ;;
	watch) opts="-q --queue -h --help" ;;
	reload) opts="--wait -h --help" ;;
	*) opts="-h --help" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		[[ ${COMPREPLY-} == *= ]] && compopt -o nospace
		return
	fi

	case $cmd in
	get | logs)
		# One id; any job.
		((cword == cmdi + 1)) &&
		    COMPREPLY=($(compgen -W "$(_jobctl_ids)" -- "$cur"))
		;;
	wait)
		COMPREPLY=($(compgen -W "$(_jobctl_ids queued running)" \
		    -- "$cur"))
		;;
	cancel)
		COMPREPLY=($(compgen -W "$(_jobctl_ids queued running)" \
		    -- "$cur"))
		;;
	pause | resume)
		((cword == cmdi + 1)) &&
		    COMPREPLY=($(compgen -W "$(_jobctl_queues)" -- "$cur"))
		;;
	esac
} &&
	complete -F _jobctl jobctl
